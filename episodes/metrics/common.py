"""What the three offline metrics share: reading the published files, and turning predictions into points."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable


class DatasetFormatError(ValueError):
    """A dataset or prediction file that is not in the expected format; the message names file, record, field."""


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """A JSON array, a JSON object holding arrays, or JSON Lines; each record must be an object."""
    file = Path(path)
    if not file.is_file():
        raise DatasetFormatError(f"{file} does not exist")
    text = file.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # maybe JSON Lines whose first line is an object
        if isinstance(data, list):
            return _objects(data, file)
        if isinstance(data, dict):
            return [data]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetFormatError(f"{file}:{number} is not JSON ({exc.msg})") from None
    return _objects(records, file)


def _objects(items: Iterable[Any], file: Path) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise DatasetFormatError(f"{file}: record {i} is a {type(item).__name__}, expected a JSON object")
        out.append(item)
    return out


def need(record: dict[str, Any], field: str, kinds: type | tuple[type, ...], where: str) -> Any:
    """``record[field]``, or a ``DatasetFormatError`` naming the record and the field."""
    if field not in record:
        raise DatasetFormatError(f"{where}: missing field '{field}'")
    value = record[field]
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        names = " or ".join(k.__name__ for k in allowed)
        raise DatasetFormatError(f"{where}: field '{field}' must be {names}, got {type(value).__name__}")
    return value


def numbers(value: Any, count: int, field: str, where: str) -> list[float]:
    if (not isinstance(value, (list, tuple)) or len(value) != count
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise DatasetFormatError(f"{where}: field '{field}' must be a list of {count} numbers, got {value!r}")
    return [float(v) for v in value]


@dataclass(frozen=True)
class Rate:
    hits: float
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 6), "hits": self.hits, "total": self.total}


def model_point(text: str, image_size: tuple[int, int]) -> tuple[str | None, tuple[int, int] | None, str]:
    """(verb, pixel point, value) of the first operation in a model's answer; (None, None, '') if it has none.

    A bare box or point in a QA-style answer counts too: that is how grounding benchmarks prompt the model.
    """
    from cogagent.grammar import ParseError, parse  # noqa: PLC0415
    from vision.geometry import ground  # noqa: PLC0415

    turn = parse(text)
    if isinstance(turn, ParseError):
        return None, None, ""
    if turn.operations:
        op = turn.operations[0]
        coords = op.box if op.box is not None else op.point
        point = ground(list(coords), image_size).point.as_tuple() if coords is not None else None
        return str(op.verb).upper(), point, str(op.value or "")
    boxes = list(turn.boxes or ())
    if boxes:
        return None, ground(list(boxes[0]), image_size).point.as_tuple(), ""
    return None, None, ""
