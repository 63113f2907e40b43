"""The one protocol the loop talks to, whatever the target: screenshot, perform, screen size, close.

``BaseActuator.perform`` owns everything that is the same on every target -- refusing unsupported actions,
bounds checks (refuse or clamp, a config choice), timing, turning device exceptions into an ``Outcome`` -- so
that an actuator only writes ``_perform`` for what is really its own. An action that fails is a value the loop
records, never an exception that ends the episode; only a target that cannot be reached at all raises
``ActuatorError`` (from the constructor or from ``screenshot``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from .actions import Action, End, Wait, _Action, action_from_dict

OutOfBounds = Literal["refuse", "clamp"]


class ActuatorError(RuntimeError):
    """The target itself is unusable (no display, browser gone, phone unreachable); the message says what to do."""


class ActionFailed(RuntimeError):
    """Raised inside ``_perform`` for a failure that is the action's, not the target's; becomes an error Outcome."""


@dataclass
class Outcome:
    """What happened when an action was performed: ``ok``, or an ``error`` with the reason."""

    ok: bool
    action: Action
    error: str | None = None
    flags: tuple[str, ...] = ()
    started_at: float = 0.0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "action": self.action.to_dict(),
            "error": self.error,
            "flags": list(self.flags),
            "started_at": self.started_at,
            "seconds": self.seconds,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Outcome":
        return cls(
            ok=bool(data["ok"]),
            action=action_from_dict(data["action"]),
            error=data.get("error"),
            flags=tuple(data.get("flags", ())),
            started_at=float(data.get("started_at", 0.0)),
            seconds=float(data.get("seconds", 0.0)),
            info=dict(data.get("info", {})),
        )


class BaseActuator:
    """Shared behaviour of every actuator. Subclasses set ``supported`` and implement the abstract methods."""

    name: str = "base"
    supported: frozenset[type] = frozenset({Wait, End})

    def __init__(self, out_of_bounds: OutOfBounds = "refuse") -> None:
        if out_of_bounds not in ("refuse", "clamp"):
            raise ValueError(f"out_of_bounds must be 'refuse' or 'clamp', got {out_of_bounds!r}")
        self.out_of_bounds: OutOfBounds = out_of_bounds

    # --- what a subclass writes -------------------------------------------------------------------------------
    @property
    def screen_size(self) -> tuple[int, int]:
        """(width, height) of ``screenshot()`` in pixels."""
        raise NotImplementedError

    def screenshot(self) -> Image.Image:
        raise NotImplementedError

    def _perform(self, action: Action) -> dict[str, Any] | None:
        """Do the action on the target; return extra info for the Outcome, raise ``ActionFailed`` on failure."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    # --- shared -----------------------------------------------------------------------------------------------
    def supports(self, action_type: type) -> bool:
        return action_type in self.supported

    def perform(self, action: Action) -> Outcome:
        started = time.time()
        t0 = time.perf_counter()

        def done(ok: bool, act: Action, error: str | None = None, flags: tuple[str, ...] = (), info=None):
            return Outcome(ok, act, error, flags, started, time.perf_counter() - t0, info or {})

        if not isinstance(action, _Action):
            raise TypeError(f"perform() takes an action from actuators.actions, got {type(action).__name__}; "
                            "build one with action_from_dict() first")
        if type(action) not in self.supported:
            names = ", ".join(sorted(t.kind for t in self.supported))  # type: ignore[attr-defined]
            return done(False, action, f"{self.name} actuator cannot perform {action.kind}; it supports: {names}")
        checked, flags, error = self._check_bounds(action)
        if error:
            return done(False, action, error, flags)
        try:
            if isinstance(checked, Wait):  # the same on every target; waiting on the target is the point
                time.sleep(checked.seconds)
                info = None
            elif isinstance(checked, End):
                info = None
            else:
                info = self._perform(checked)
        except ActionFailed as exc:
            return done(False, checked, str(exc), flags)
        except ActuatorError as exc:
            return done(False, checked, str(exc), flags + ("target_error",))
        except Exception as exc:  # a device library's own exception: keep the episode alive, say what broke
            return done(False, checked, f"{type(exc).__name__}: {exc}", flags + ("target_error",))
        return done(True, checked, None, flags, info)

    def _check_bounds(self, action: Action) -> tuple[Action, tuple[str, ...], str | None]:
        width, height = self.screen_size
        changes: dict[str, tuple[int, int]] = {}
        for name in ("point", "start", "end"):
            p = getattr(action, name, None)
            if p is None or not isinstance(p, tuple):
                continue
            x, y = p
            if 0 <= x < width and 0 <= y < height:
                continue
            if self.out_of_bounds == "refuse":
                return action, ("out_of_bounds",), (
                    f"{action.kind}.{name} {p} is outside the {width}x{height} screen; "
                    "set out_of_bounds: clamp to move such points onto the screen edge instead"
                )
            changes[name] = (min(max(x, 0), width - 1), min(max(y, 0), height - 1))
        if changes:
            return action.with_points(changes), ("clamped",), None  # type: ignore[return-value]
        return action, (), None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
