"""Run settings: defaults, YAML files, flags; unknown keys are errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from episodes.config import ConfigError, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_then_file_then_flags(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("loop:\n  max_steps: 7\nbrowser:\n  viewport: [800, 600]\n")
    cfg = load_config([f], {"loop.max_steps": 3, "confirm": "always", "model.path": None})
    assert cfg["loop"]["max_steps"] == 3
    assert cfg["loop"]["parse_retries"] == 2
    assert cfg["browser"]["viewport"] == [800, 600]
    assert cfg["confirm"] == "always"


@pytest.mark.parametrize("text, message", [
    ("loop:\n  max_step: 3\n", "unknown key 'loop.max_step'"),
    ("bogus: 1\n", "unknown key 'bogus'"),
    ("loop: 3\n", "'loop' must be a mapping"),
    ("- a\n- b\n", "mapping of settings"),
    ("loop: [unclosed\n", "not valid YAML"),
])
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config([f])


def test_missing_file_and_unknown_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([tmp_path / "none.yaml"])
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config([], {"loop.nope": 1})


def test_shipped_configs_load() -> None:
    files = sorted(CONFIGS.glob("*.yaml"))
    assert files, "configs/ ships YAML files"
    for f in files:
        load_config([f])
