"""Run settings: YAML files in ``configs/`` merged over built-in defaults, then command-line flags on top.

Unknown keys are errors, not silently ignored: a misspelt ``max_step`` that quietly keeps the default budget is
exactly the kind of thing a person only finds out after an expensive run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DEFAULTS: dict[str, Any] = {
    "out": "runs",
    "confirm": "sensitive",
    "sensitive_words": None,  # None: the built-in list in episodes.gate
    "allow_password_typing": False,
    "loop": {"max_steps": 15, "max_seconds": 900.0, "step_timeout_s": 600.0, "parse_retries": 2},
    "model": {"path": None, "tokenizer": None, "dtype": None, "device": None, "device_map": None,
              "max_new_tokens": 256, "template": None, "history_steps": 4},
    "server": {"url": None, "model": "cogagent", "api_key": None, "style": "18b", "platform": "WIN",
               "timeout_s": 120.0, "retries": 2, "max_tokens": 512},
    "browser": {"viewport": [1280, 800], "device_scale_factor": 1.0, "headless": True, "start_url": None,
                "allowed_domains": [], "user_data_dir": None, "executable": None, "out_of_bounds": "refuse",
                "hang_timeout_s": 60.0},
    "desktop": {"display": None, "failsafe": True, "out_of_bounds": "refuse"},
    "android": {"host": "127.0.0.1", "port": 5555, "serial": None, "unicode_ime": None, "out_of_bounds": "refuse"},
}


class ConfigError(ValueError):
    """A config file or value that cannot be used; the message names the key and the file."""


def _merge(base: dict[str, Any], over: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        name = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise ConfigError(f"{where}: unknown key '{name}' (known keys here: {known})")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{name}' must be a mapping, got {type(value).__name__}")
            out[key] = _merge(base[key], value, where, f"{name}.")
        else:
            out[key] = value
    return out


def load_config(paths: list[str | Path] = (), overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then each YAML file in order, then ``overrides`` (dotted keys, e.g. ``"loop.max_steps"``)."""
    config = copy.deepcopy(DEFAULTS)
    for path in paths:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file {file} does not exist")
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file} must hold a mapping of settings at the top level")
        config = _merge(config, data, str(file))
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = config
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"unknown setting {dotted!r}")
        node[parts[-1]] = value
    return config
