"""CogAgent's 0-999 coordinates <-> screenshot pixels, and screenshot pixels <-> an actuator's input space.

Why per axis: CogAgent resizes every screenshot to a square (224x224 and 1120x1120) without keeping the aspect
ratio, so a normalised ``x`` is a fraction of the *width* and a normalised ``y`` a fraction of the *height*.

The convention (one rule, used both ways, so that conversions round-trip):

* A normalised value ``v`` (an integer 0..999, as the model writes three digits) names a *bin*: the slice
  ``[v/1000, (v+1)/1000)`` of the axis. That is what ``int(p / size * 1000)`` on a pixel gives, which is how
  grounding data is normally made; so the best pixel for ``v`` is the centre of its bin::

      pixel = floor((v + 0.5) / 1000 * size)          (then clamped to 0 .. size-1)

* A pixel ``p`` is the square ``[p, p+1)``; its centre ``p + 0.5`` is what is normalised::

      v = floor((p + 0.5) / size * 1000)              (then clamped to 0 .. 999)

With these two, ``to_norm(to_pixel(v)) == v`` for every ``v`` when ``size >= 1000`` and
``to_pixel(to_norm(p)) == p`` for every pixel when ``size <= 1000`` (each bin holds at least one pixel, resp. each
pixel at least one bin); ``tests/test_geometry.py`` checks both exhaustively.

Model output is untrusted: values above 999 (or negative) are clamped into 0..999 and *reported* in the result's
``issues``; swapped box corners are put in order (reported); a zero-width or zero-height box still has a centre.

``ScreenScale`` is the second, separate ratio: screenshot pixels per input unit (CSS pixels in a browser, logical
X11 pixels on a HiDPI desktop, touch coordinates on a phone). It is *measured* from the two sizes an actuator
actually observes, never assumed from a config's device scale factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

NORM_SIZE = 1000
"""The model's coordinate range is 0 .. NORM_SIZE-1 on both axes."""
NORM_MAX = NORM_SIZE - 1


class GeometryError(ValueError):
    """Coordinates or sizes that cannot be converted at all (wrong count, not numbers, empty screen)."""


Size = tuple[int, int]
"""(width, height) in pixels."""


@dataclass(frozen=True)
class Point:
    """A pixel (integer x, y) on a screenshot."""

    x: int
    y: int

    def as_tuple(self) -> tuple[int, int]:
        return (self.x, self.y)


@dataclass(frozen=True)
class Box:
    """A pixel box with inclusive corners, always ordered: ``x1 <= x2`` and ``y1 <= y2``.

    Inclusive because a box converted from the model's bins names the first and last pixel it covers; a box of
    one pixel has ``x1 == x2``.
    """

    x1: int
    y1: int
    x2: int
    y2: int

    def __post_init__(self) -> None:
        if self.x1 > self.x2 or self.y1 > self.y2:
            raise GeometryError(f"Box corners out of order: {self.as_tuple()}; build it with Box.from_corners")

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float) -> "Box":
        """Any two opposite corners, in any order."""
        xs = sorted((int(round(x1)), int(round(x2))))
        ys = sorted((int(round(y1)), int(round(y2))))
        return cls(xs[0], ys[0], xs[1], ys[1])

    @property
    def width(self) -> int:
        return self.x2 - self.x1 + 1

    @property
    def height(self) -> int:
        return self.y2 - self.y1 + 1

    @property
    def center(self) -> Point:
        """The middle pixel (rounded down on even spans)."""
        return Point((self.x1 + self.x2) // 2, (self.y1 + self.y2) // 2)

    def contains(self, point: Point | Sequence[float]) -> bool:
        x, y = (point.x, point.y) if isinstance(point, Point) else point
        return self.x1 <= x <= self.x2 and self.y1 <= y <= self.y2

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class Grounding:
    """Where the model pointed, in pixels: the box (when it gave one), the point to act on, and what was fixed.

    ``issues`` is empty for clean output; otherwise each entry says what was wrong and what was done about it
    (``"x2=1024 outside 0-999, clamped to 999"``, ``"box corners swapped, reordered"``,
    ``"degenerate box (zero width), using its centre"``). The loop records them with the step.
    """

    point: Point
    box: Box | None
    norm: tuple[int, ...]
    issues: tuple[str, ...] = ()


def _check_size(size: Sequence[int]) -> Size:
    try:
        w, h = size
    except (TypeError, ValueError):
        raise GeometryError(f"size must be (width, height), got {size!r}") from None
    for v in (w, h):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise GeometryError(f"size must be two positive whole numbers of pixels, got {size!r}")
    return (w, h)


def _check_number(v: object, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise GeometryError(f"{what} must be a finite number, got {v!r}")
    return float(v)


def clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def norm_to_pixel(v: float, size: int) -> int:
    """One normalised value (0..999) to a pixel index on an axis of ``size`` pixels (centre of the bin)."""
    v = clamp(_check_number(v, "normalised value"), 0, NORM_MAX)
    return int(clamp(_floor_div(2 * v + 1, size, 2 * NORM_SIZE), 0, size - 1))


def pixel_to_norm(p: float, size: int) -> int:
    """One pixel index to the model's 0..999 (the bin holding the pixel's centre)."""
    p = clamp(_check_number(p, "pixel"), 0, size - 1)
    return int(clamp(_floor_div(2 * p + 1, NORM_SIZE, 2 * size), 0, NORM_MAX))


def _floor_div(a: float, b: int, c: int) -> int:
    """floor(a * b / c), exact when ``a`` is whole (it is: twice a value that is whole or a half), so that bin
    edges such as 212.5 / 1000 * 1280 == 272 do not fall to 271.99999 in floating point."""
    if a == int(a):
        return (int(a) * b) // c
    return math.floor(a * b / c)


def _clamp_norm(values: Iterable[object], names: Sequence[str]) -> tuple[tuple[int, ...], list[str]]:
    out: list[int] = []
    issues: list[str] = []
    for name, raw in zip(names, values):
        v = _check_number(raw, name)
        if v != int(v):
            issues.append(f"{name}={raw} is not a whole number, rounded")
        iv = int(round(v))
        if not 0 <= iv <= NORM_MAX:
            c = int(clamp(iv, 0, NORM_MAX))
            issues.append(f"{name}={raw} outside 0-{NORM_MAX}, clamped to {c}")
            iv = c
        out.append(iv)
    return tuple(out), issues


def ground(coords: Sequence[float], size: Sequence[int]) -> Grounding:
    """Model coordinates -- a point ``[x, y]`` or a box ``[x1, y1, x2, y2]`` (0..999) -- to pixels on ``size``.

    For a box, the point to act on is the centre of the box *in normalised space* converted like any point, so
    a degenerate box and the equivalent point give the same pixel.
    """
    w, h = _check_size(size)
    if isinstance(coords, (str, bytes)) or not isinstance(coords, Sequence) or len(coords) not in (2, 4):
        raise GeometryError(
            f"expected a point [x, y] or a box [x1, y1, x2, y2] of 0-{NORM_MAX} values, got {coords!r}"
        )
    if len(coords) == 2:
        (x, y), issues = _clamp_norm(coords, ("x", "y"))
        return Grounding(Point(norm_to_pixel(x, w), norm_to_pixel(y, h)), None, (x, y), tuple(issues))
    (x1, y1, x2, y2), issues = _clamp_norm(coords, ("x1", "y1", "x2", "y2"))
    if x1 > x2 or y1 > y2:
        issues.append("box corners swapped, reordered")
        x1, x2 = min(x1, x2), max(x1, x2)
        y1, y2 = min(y1, y2), max(y1, y2)
    if x1 == x2 or y1 == y2:
        which = "zero width and height" if (x1 == x2 and y1 == y2) else "zero width" if x1 == x2 else "zero height"
        issues.append(f"degenerate box ({which}), using its centre")
    box = Box(norm_to_pixel(x1, w), norm_to_pixel(y1, h), norm_to_pixel(x2, w), norm_to_pixel(y2, h))
    centre = Point(norm_to_pixel((x1 + x2) / 2, w), norm_to_pixel((y1 + y2) / 2, h))
    return Grounding(centre, box, (x1, y1, x2, y2), tuple(issues))


def point_to_norm(point: Point | Sequence[float], size: Sequence[int]) -> tuple[int, int]:
    """A pixel point to the model's ``[x, y]`` (pixels off the screen are clamped onto its edge)."""
    w, h = _check_size(size)
    x, y = (point.x, point.y) if isinstance(point, Point) else point
    return (pixel_to_norm(x, w), pixel_to_norm(y, h))


def box_to_norm(box: Box | Sequence[float], size: Sequence[int]) -> tuple[int, int, int, int]:
    """A pixel box to the model's ``[x1, y1, x2, y2]`` (what a dataset's ground truth becomes for a prompt)."""
    w, h = _check_size(size)
    b = box if isinstance(box, Box) else Box.from_corners(*box)
    return (pixel_to_norm(b.x1, w), pixel_to_norm(b.y1, h), pixel_to_norm(b.x2, w), pixel_to_norm(b.y2, h))


def clamp_point(point: Point | Sequence[float], size: Sequence[int]) -> tuple[Point, bool]:
    """The point moved onto the screen if it is off it; the flag says whether it moved."""
    w, h = _check_size(size)
    x, y = (point.x, point.y) if isinstance(point, Point) else point
    x, y = int(round(_check_number(x, "x"))), int(round(_check_number(y, "y")))
    cx, cy = int(clamp(x, 0, w - 1)), int(clamp(y, 0, h - 1))
    return Point(cx, cy), (cx, cy) != (x, y)


def clamp_box(box: Box, size: Sequence[int]) -> tuple[Box, bool]:
    """The box cut to the screen (a box wholly off screen collapses onto the nearest edge)."""
    w, h = _check_size(size)
    out = Box(
        int(clamp(box.x1, 0, w - 1)), int(clamp(box.y1, 0, h - 1)),
        int(clamp(box.x2, 0, w - 1)), int(clamp(box.y2, 0, h - 1)),
    )
    return out, out != box


def distance(a: Point | Sequence[float], b: Point | Sequence[float]) -> float:
    ax, ay = (a.x, a.y) if isinstance(a, Point) else a
    bx, by = (b.x, b.y) if isinstance(b, Point) else b
    return math.hypot(ax - bx, ay - by)


@dataclass(frozen=True)
class ScreenScale:
    """Screenshot pixels per input unit, per axis, measured from what the actuator saw.

    ``screenshot_size`` is the size of a real screenshot; ``input_size`` the size of the input space the same
    screen has (CSS viewport, X11 logical screen, Android ``wm size``). A browser at device scale factor 2 gives
    a 2560x1600 screenshot of a 1280x800 viewport: ``sx == sy == 2``.

    Mapping uses pixel centres so that a screenshot pixel lands inside the input unit that covers it:
    ``input = (pixel + 0.5) / s`` (a float; ``integer=True`` floors it for integer input spaces) and back
    ``pixel = floor((input + 0.5) * s)`` clamped to the screenshot.
    """

    screenshot_size: Size
    input_size: Size

    def __post_init__(self) -> None:
        object.__setattr__(self, "screenshot_size", _check_size(self.screenshot_size))
        object.__setattr__(self, "input_size", _check_size(self.input_size))

    @classmethod
    def measure(cls, screenshot_size: Sequence[int], input_size: Sequence[int]) -> "ScreenScale":
        return cls(tuple(screenshot_size), tuple(input_size))  # type: ignore[arg-type]

    @property
    def sx(self) -> float:
        return self.screenshot_size[0] / self.input_size[0]

    @property
    def sy(self) -> float:
        return self.screenshot_size[1] / self.input_size[1]

    @property
    def uniform(self) -> bool:
        """Whether both axes scale alike (within a pixel over the screen), as HiDPI screens do."""
        return abs(self.sx - self.sy) * max(self.input_size) < 1.0

    @property
    def factor(self) -> float:
        """One number for logs (the device scale factor / density ratio); use ``sx``/``sy`` to map points."""
        return (self.sx + self.sy) / 2

    def to_input(self, point: Point | Sequence[float], integer: bool = False) -> tuple[float, float]:
        x, y = (point.x, point.y) if isinstance(point, Point) else point
        ix = (_check_number(x, "x") + 0.5) / self.sx
        iy = (_check_number(y, "y") + 0.5) / self.sy
        if integer:
            return (
                float(clamp(math.floor(ix), 0, self.input_size[0] - 1)),
                float(clamp(math.floor(iy), 0, self.input_size[1] - 1)),
            )
        return (ix, iy)

    def to_input_int(self, point: Point | Sequence[float]) -> tuple[int, int]:
        x, y = self.to_input(point, integer=True)
        return (int(x), int(y))

    def to_screenshot(self, point: Sequence[float]) -> Point:
        """An input-space point to the screenshot pixel under the centre of its input unit."""
        x, y = point
        px = math.floor((_check_number(x, "x") + 0.5) * self.sx)
        py = math.floor((_check_number(y, "y") + 0.5) * self.sy)
        return Point(
            int(clamp(px, 0, self.screenshot_size[0] - 1)), int(clamp(py, 0, self.screenshot_size[1] - 1))
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "screenshot_size": list(self.screenshot_size),
            "input_size": list(self.input_size),
            "sx": self.sx,
            "sy": self.sy,
        }
