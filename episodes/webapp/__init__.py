"""The bundled local web site that browser episodes, the web evaluation suite and the README's demo run against.

Why bundled: a task whose success is read from a live public site is neither reproducible nor scoreable
offline, and these machines reach no site at all. So the project serves its own small, plain HTML/CSS/JS web
apps (paper search, shop, login, forms, settings, a Chinese page, ...) on 127.0.0.1, and every page reports
what the user did to the server; a task's success is read from that recorded state, never from pixels.

Public API (small on purpose):

- ``WebAppServer(host="127.0.0.1", port=0)``: the threaded server, a context manager; ``.url`` (home page),
  ``.base_url``, ``.page_url(path, session)``, ``.new_session()``, ``.state(session)``, ``.reset(session)``,
  ``.close()``.  See ``episodes.webapp.server``.
- ``WEB_TASKS: dict[str, WebTask]``: the task registry; ``WebTask`` has ``name``, ``instruction``,
  ``start_path``, ``check(state) -> bool``, ``max_steps``, ``steps_needed`` and a scripted ``solution``
  (``Step(selector, kind, value)`` tuples). See ``episodes.webapp.tasks``.
- ``SITE_DIR``: the folder of static pages (also the widget source for synthetic data).
"""

from .server import SITE_DIR, WebAppServer
from .tasks import WEB_TASKS, Step, WebTask

__all__ = ["SITE_DIR", "WEB_TASKS", "Step", "WebAppServer", "WebTask"]
