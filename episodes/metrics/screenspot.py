"""ScreenSpot (SeeClick, 2024): is the predicted click point inside the target element's box?

Published format: one JSON array per platform (``screenspot_mobile.json``, ``_desktop``, ``_web``), records
``{"img_filename", "bbox": [x, y, w, h] in pixels, "instruction", "data_type": "text"|"icon", "data_source"}``.
The platform comes from the record (``platform``) or from the file name. Scores are reported per platform and
element type, and overall, as the paper's table does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import DatasetFormatError, Rate, need, numbers, read_records

PLATFORMS = ("mobile", "desktop", "web")


@dataclass(frozen=True)
class ScreenSpotItem:
    key: str  # the record's index in its file: what prediction files refer to
    platform: str
    data_type: str
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 pixels
    instruction: str
    image: str


def load_screenspot(path: str | Path, platform: str | None = None) -> list[ScreenSpotItem]:
    file = Path(path)
    guessed = platform or next((p for p in PLATFORMS if p in file.name.lower()), None)
    items = []
    for i, rec in enumerate(read_records(file)):
        where = f"{file} record {i}"
        image = need(rec, "img_filename", str, where)
        x, y, w, h = numbers(need(rec, "bbox", list, where), 4, "bbox", where)
        if w < 0 or h < 0:
            raise DatasetFormatError(f"{where}: field 'bbox' is [x, y, width, height]; width and height must be >= 0")
        kind = need(rec, "data_type", str, where)
        if kind not in ("text", "icon"):
            raise DatasetFormatError(f"{where}: field 'data_type' must be 'text' or 'icon', got {kind!r}")
        plat = rec.get("platform", guessed)
        if plat not in PLATFORMS:
            raise DatasetFormatError(f"{where}: no platform: add a 'platform' field ({'/'.join(PLATFORMS)}) "
                                     "or name the file screenspot_<platform>.json")
        items.append(ScreenSpotItem(str(i), plat, kind, (x, y, x + w, y + h),
                                    need(rec, "instruction", str, where), image))
    return items


def inside(point: tuple[float, float] | None, box: tuple[float, float, float, float]) -> bool:
    """Edges count as inside, as a click on the border pixel hits the element."""
    if point is None:
        return False
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def score_screenspot(items: list[ScreenSpotItem], points: dict[str, tuple[float, float] | None]) -> dict[str, Any]:
    """``points`` maps item key -> predicted pixel point (None or absent: no usable prediction, a miss)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for item in items:
        hit = inside(points.get(item.key), item.bbox)
        for name in ("overall", item.platform, f"{item.platform}/{item.data_type}"):
            groups[name].append(hit)
    return {name: Rate(sum(v), len(v)).to_dict() for name, v in sorted(groups.items())}
