"""Environments the loop runs against, registered by suite: ``web:<task>``, ``miniwob:<task>``, ``phone:<task>``.

An environment owns its target (a local site, MiniWoB's pages, the simulated phone), hands the loop an actuator
at the task's start state, and reads success from the target's own state -- never from screenshots -- so an
agent's score does not depend on how it looked at the screen.
"""

from __future__ import annotations

from .base import Environment, TaskNotFound, list_tasks, make_env, register_suite, suites

__all__ = ["Environment", "TaskNotFound", "list_tasks", "make_env", "register_suite", "suites"]
