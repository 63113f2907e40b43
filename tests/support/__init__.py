"""Helpers shared by tests (an X server, a Tk event logger); not tests themselves."""
