"""The simulated phone's screen: ``phone.html`` with ``phone.css`` and ``phone.js`` (a package only so that
setuptools ships these files with ``episodes.phone``)."""
