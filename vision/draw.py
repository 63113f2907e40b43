"""Drawing what the agent saw and did onto a copy of a screenshot: boxes with labels, click points, swipe arrows.

Used for ``step-NNN.annotated.png`` and for screenshot-QA answers with boxes. Labels are often Chinese
(CogAgent is bilingual), so the font is a CJK-capable one when the system has it (fonts-noto-cjk), found with
``fc-match`` or at its Debian path; otherwise PIL's built-in font, which renders ASCII only.

Everything here takes pixel coordinates (after ``vision.geometry``) and never modifies the image it is given.
``draw_action`` reads the plain ``to_dict()`` form of an action so that this module needs nothing of ours.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

from .geometry import Box, Point

CJK_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)

PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240))
"""Distinct, colour-blind-tolerable colours, cycled for several boxes."""

ColorT = tuple[int, int, int]


def _fc_match_cjk() -> str | None:
    if not shutil.which("fc-match"):
        return None
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", "sans-serif:lang=zh-cn"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    path = out.stdout.strip()
    return path if out.returncode == 0 and path and Path(path).is_file() else None


@functools.lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """The path of a font that has Chinese glyphs, or None when the system has none."""
    for path in CJK_FONT_PATHS:
        if Path(path).is_file():
            return path
    found = _fc_match_cjk()
    if found and any(k in found.lower() for k in ("cjk", "wqy", "droidsansfallback", "hei", "song", "ming")):
        return found
    return None


@functools.lru_cache(maxsize=16)
def load_font(size: int = 16) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A CJK-capable font of ``size`` pixels, or PIL's default font when none is installed."""
    path = cjk_font_path()
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1 has no sized default
        return ImageFont.load_default()


@dataclass(frozen=True)
class Style:
    """Sizes scale with the image so that marks stay visible on a 2560-pixel HiDPI screenshot and a phone."""

    line: int
    radius: int
    font_size: int

    @classmethod
    def for_image(cls, image: Image.Image) -> "Style":
        s = max(1.0, min(image.size) / 400)
        return cls(line=max(2, round(1.5 * s)), radius=max(6, round(6 * s)), font_size=max(12, round(7 * s)))


def _xy(p: Point | Sequence[float]) -> tuple[float, float]:
    return (float(p.x), float(p.y)) if isinstance(p, Point) else (float(p[0]), float(p[1]))


def _box(b: Box | Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(b, Box):
        return b.as_tuple()
    x1, y1, x2, y2 = (float(v) for v in b)
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _color(i: int, color: ColorT | None) -> ColorT:
    return color if color is not None else PALETTE[i % len(PALETTE)]


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, color: ColorT, style: Style,
           size: tuple[int, int]) -> None:
    """A filled tag holding ``text``, placed above ``xy`` or below it when there is no room, kept on the image."""
    font = load_font(style.font_size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left + 6, bottom - top + 4
    x = min(max(0.0, xy[0]), max(0.0, size[0] - tw))
    y = xy[1] - th if xy[1] - th >= 0 else xy[1]
    y = min(max(0.0, y), max(0.0, size[1] - th))
    draw.rectangle((x, y, x + tw, y + th), fill=color)
    draw.text((x + 3 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)


def draw_box(draw: ImageDraw.ImageDraw, box: Box | Sequence[float], label: str | None, color: ColorT,
             style: Style, size: tuple[int, int]) -> None:
    x1, y1, x2, y2 = _box(box)
    draw.rectangle((x1, y1, x2, y2), outline=color, width=style.line)
    if label:
        _label(draw, (x1, y1), label, color, style, size)


def draw_point(draw: ImageDraw.ImageDraw, point: Point | Sequence[float], label: str | None, color: ColorT,
               style: Style, size: tuple[int, int]) -> None:
    """A ring with a crosshair through it: the exact pixel stays visible under the mark."""
    x, y = _xy(point)
    r = style.radius
    draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=style.line)
    draw.line((x - 2 * r, y, x - r / 2, y), fill=color, width=style.line)
    draw.line((x + r / 2, y, x + 2 * r, y), fill=color, width=style.line)
    draw.line((x, y - 2 * r, x, y - r / 2), fill=color, width=style.line)
    draw.line((x, y + r / 2, x, y + 2 * r), fill=color, width=style.line)
    if label:
        _label(draw, (x + r, y - r), label, color, style, size)


def draw_arrow(draw: ImageDraw.ImageDraw, start: Point | Sequence[float], end: Point | Sequence[float],
               label: str | None, color: ColorT, style: Style, size: tuple[int, int]) -> None:
    """A line from ``start`` with a filled head at ``end`` and a dot at ``start`` (swipe and drag)."""
    (sx, sy), (ex, ey) = _xy(start), _xy(end)
    draw.line((sx, sy, ex, ey), fill=color, width=style.line + 1)
    r = style.radius / 2
    draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=color)
    length = math.hypot(ex - sx, ey - sy)
    if length > 0:
        ux, uy = (ex - sx) / length, (ey - sy) / length
        head = min(3 * style.radius, max(length / 2, style.radius))
        bx, by = ex - ux * head, ey - uy * head
        px, py = -uy * head / 2, ux * head / 2
        draw.polygon([(ex, ey), (bx + px, by + py), (bx - px, by - py)], fill=color)
    if label:
        _label(draw, (sx, sy), label, color, style, size)


def annotate(
    image: Image.Image,
    boxes: Iterable[tuple[Box | Sequence[float], str | None]] = (),
    points: Iterable[tuple[Point | Sequence[float], str | None]] = (),
    arrows: Iterable[tuple[Point | Sequence[float], Point | Sequence[float], str | None]] = (),
    color: ColorT | None = None,
    caption: str | None = None,
) -> Image.Image:
    """A new RGB image: ``image`` with labelled boxes, click points and arrows drawn on it.

    Each box/point/arrow takes the next palette colour unless ``color`` is given; ``caption`` is written in a
    band at the top-left (e.g. the step's action text).
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    style = Style.for_image(out)
    i = 0
    for box, label in boxes:
        draw_box(draw, box, label, _color(i, color), style, out.size)
        i += 1
    for point, label in points:
        draw_point(draw, point, label, _color(i, color), style, out.size)
        i += 1
    for start, end, label in arrows:
        draw_arrow(draw, start, end, label, _color(i, color), style, out.size)
        i += 1
    if caption:
        _label(draw, (0, 0), caption, (40, 40, 40), style, out.size)
    return out


def draw_action(image: Image.Image, action: dict[str, Any], box: Box | Sequence[float] | None = None,
                label: str | None = None) -> Image.Image:
    """Annotate a screenshot with one action in its ``to_dict()`` form (plus the model's box, when it gave one).

    Points become crosshairs, ``start``/``end`` an arrow, a scroll an arrow from its point in the scroll
    direction; the label defaults to the action type (and the typed text or chosen option, shortened).
    """
    if not isinstance(action, dict) or "type" not in action:
        raise ValueError(f"draw_action needs an action as a dict with a 'type', got {action!r}")
    kind = str(action["type"])
    if label is None:
        extra = action.get("text") or action.get("option") or action.get("target") or action.get("direction")
        label = kind if not extra else f"{kind}: {str(extra)[:40]}"
    boxes = [(box, None)] if box is not None else []
    points: list[tuple[Sequence[float], str | None]] = []
    arrows: list[tuple[Sequence[float], Sequence[float], str | None]] = []
    if action.get("start") is not None and action.get("end") is not None:
        arrows.append((action["start"], action["end"], label))
    elif kind == "scroll":
        w, h = image.size
        x, y = action.get("point") or (w // 2, h // 2)
        d = min(w, h) / 6
        dx, dy = {"up": (0, -d), "down": (0, d), "left": (-d, 0), "right": (d, 0)}.get(
            str(action.get("direction")), (0, d)
        )
        arrows.append(((x, y), (x + dx, y + dy), label))
    elif action.get("point") is not None:
        points.append((action["point"], label))
    out = annotate(image, boxes=boxes, points=points, arrows=arrows, color=(230, 25, 75))
    if not points and not arrows:  # navigate, key press, wait, end: say it in a caption
        out = annotate(out, caption=label)
    return out
