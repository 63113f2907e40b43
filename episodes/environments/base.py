"""The small environment interface (reset, actuator, is_successful, close) and the suite registry."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

from actuators.base import BaseActuator


class TaskNotFound(ValueError):
    """A task or suite name that does not exist; the message lists the valid ones."""


class Environment(Protocol):
    name: str  # "suite:task"
    instruction: str
    max_steps: int

    def reset(self, seed: int | None = None) -> BaseActuator:
        """Put the target in the task's start state and return the actuator to drive it with."""

    def is_successful(self) -> bool:
        """Whether the target's own state shows the task done."""

    def info(self) -> dict[str, Any]:
        """What to record about the run beside success (reward, final state)."""

    def close(self) -> None: ...


SuiteEntry = tuple[Callable[[], list[str]], Callable[..., Environment]]
_SUITES: dict[str, str] = {
    "web": "episodes.environments.web",
    "miniwob": "episodes.environments.miniwob",
    "phone": "episodes.environments.phone",
    "synth": "episodes.environments.synth",
}
_LOADED: dict[str, SuiteEntry] = {}


def register_suite(name: str, module: str) -> None:
    """Make ``name`` resolve to ``module``, which defines ``task_names()`` and ``make(task, **options)``."""
    _SUITES[name] = module
    _LOADED.pop(name, None)


def suites() -> list[str]:
    return sorted(_SUITES)


def _suite(name: str) -> SuiteEntry:
    if name not in _SUITES:
        raise TaskNotFound(f"unknown suite {name!r}: choose one of {', '.join(suites())}")
    if name not in _LOADED:
        module = importlib.import_module(_SUITES[name])
        _LOADED[name] = (module.task_names, module.make)
    return _LOADED[name]


def list_tasks(suite: str) -> list[str]:
    return list(_suite(suite)[0]())


def parse_spec(spec: str) -> list[str]:
    """``"web"`` -> every web task; ``"web:login,search-cogvlm"`` -> those two; names are checked."""
    suite, _, rest = spec.partition(":")
    known = list_tasks(suite)
    if not rest:
        return [f"{suite}:{t}" for t in known]
    out = []
    for task in (t.strip() for t in rest.split(",") if t.strip()):
        if task not in known:
            raise TaskNotFound(f"unknown task {task!r} in suite {suite!r}; valid tasks: {', '.join(known)}")
        out.append(f"{suite}:{task}")
    return out


def make_env(name: str, **options: Any) -> Environment:
    suite, _, task = name.partition(":")
    names, make = _suite(suite)
    if task not in names():
        raise TaskNotFound(f"unknown task {task!r} in suite {suite!r}; valid tasks: {', '.join(names())}")
    return make(task, **options)
