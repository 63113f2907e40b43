"""Building the actuator and the policy a run asks for, from the merged settings.

Imports of the heavy pieces (Playwright, pyautogui, adb-shell, torch) happen inside the functions, so that
``run_agent.py report`` or ``replay`` on a machine without a GPU stack still start instantly.
"""

from __future__ import annotations

from typing import Any

from actuators.base import ActuatorError, BaseActuator

ENVS = ("browser", "desktop", "android")


def make_actuator(env: str, config: dict[str, Any], url: str | None = None) -> BaseActuator:
    if env == "browser":
        from actuators.browser import BrowserActuator, BrowserConfig

        b = config["browser"]
        return BrowserActuator(BrowserConfig(
            viewport=tuple(b["viewport"]), device_scale_factor=float(b["device_scale_factor"]),
            start_url=url or b["start_url"], user_data_dir=b["user_data_dir"],
            allowed_domains=tuple(b["allowed_domains"]) or None, headless=bool(b["headless"]),
            executable_path=b["executable"], out_of_bounds=b["out_of_bounds"],
            hang_timeout=b["hang_timeout_s"]))
    if env == "desktop":
        from actuators.desktop import DesktopActuator

        d = config["desktop"]
        return DesktopActuator(display=d["display"], failsafe=bool(d["failsafe"]), out_of_bounds=d["out_of_bounds"])
    if env == "android":
        from actuators.android import AndroidActuator

        a = config["android"]
        return AndroidActuator(host=a["host"], port=int(a["port"]), unicode_ime=a["unicode_ime"],
                               out_of_bounds=a["out_of_bounds"])
    raise ActuatorError(f"unknown environment {env!r}: choose one of {', '.join(ENVS)}")


def load_local_model(model_cfg: dict[str, Any]) -> tuple[Any, Any]:
    """The model and tokenizer from local directories; nothing is downloaded."""
    import torch

    from cogagent import CogAgentForCausalLM
    from cogagent.tokenizer import load_tokenizer

    if not model_cfg.get("path"):
        raise ValueError("no model: pass --model DIR (a local CogAgent checkpoint) or --server URL")
    if not model_cfg.get("tokenizer"):
        raise ValueError("no tokenizer: pass --tokenizer DIR (a local copy of lmsys/vicuna-7b-v1.5's tokenizer)")
    from pathlib import Path  # noqa: PLC0415

    if not Path(model_cfg["path"]).is_dir():  # before the tokenizer: say first what is most likely wrong
        raise ValueError(f"no CogAgent checkpoint at {model_cfg['path']}: pass the directory holding config.json "
                         "and the model-*.safetensors shards of THUDM/cogagent-chat-hf")
    device = model_cfg.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(model_cfg["tokenizer"])
    model = CogAgentForCausalLM.from_pretrained(model_cfg["path"], dtype=model_cfg.get("dtype"), device=device,
                                                device_map=model_cfg.get("device_map"))
    model.eval()
    return model, tokenizer


def make_policy(config: dict[str, Any]) -> Any:
    from .policies import CogAgentPolicy, HttpPolicy

    server = config["server"]
    if server.get("url"):
        return HttpPolicy(server["url"], model=server["model"], api_key=server["api_key"], style=server["style"],
                          platform=server["platform"], timeout_s=float(server["timeout_s"]),
                          retries=int(server["retries"]), max_tokens=int(server["max_tokens"]))
    m = config["model"]
    model, tokenizer = load_local_model(m)
    return CogAgentPolicy(model, tokenizer, template=m["template"], max_new_tokens=int(m["max_new_tokens"]),
                          history_steps=int(m["history_steps"]), model_path=str(m["path"]))
