"""One self-contained HTML page per episode: every step's annotated screenshot, the model's words, the outcome.

Self-contained (screenshots inlined as base64) so that the file can be mailed, attached to an issue or opened
offline. Every string from the model or the page is escaped: model-written text is untrusted, and a report
must not become a way to run script in the reader's browser.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from .store import Episode, load_episode

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} .meta{color:#555;margin-bottom:18px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.bad{background:#c62828}.mid{background:#ef6c00}
.step{display:flex;gap:18px;background:#fff;border:1px solid #ddd;border-radius:8px;padding:14px;margin:14px 0}
.step img{max-width:560px;width:100%;border:1px solid #ccc;border-radius:4px}
.shot{flex:0 0 560px}.text{flex:1;min-width:0}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f3f3;padding:8px;border-radius:4px;font-size:13px}
table{border-collapse:collapse;font-size:13px}td{padding:2px 10px 2px 0;vertical-align:top}
.k{color:#666}
"""


def _img(path: Path) -> str:
    if not path.is_file():
        return '<p class="k">(screenshot missing)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _badge(status: str) -> str:
    cls = "ok" if status in ("success", "acted", "ended") else "mid" if status in (
        "skipped", "takeover", "max_steps", "timeout", "interrupted", "running") else "bad"
    return f'<span class="badge {cls}">{html.escape(status)}</span>'


def _when(ts: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def _step_html(episode: Episode, step: dict[str, Any]) -> str:
    shot_name = step.get("annotated") or step.get("screenshot")
    shot = _img(episode.path / shot_name) if shot_name else '<p class="k">(no screenshot)</p>'
    turn = step.get("turn") or {}
    rows = [
        ("plan", turn.get("plan")), ("next action", turn.get("next_action")),
        ("action", json.dumps(step.get("action"), ensure_ascii=False) if step.get("action") else None),
        ("error", step.get("error")),
        ("gate", "; ".join(step.get("gate", {}).get("reasons", [])) or None),
        ("grounding issues", "; ".join((step.get("grounding") or {}).get("issues", [])) or None),
    ]
    timings = ", ".join(f"{k} {v:.3f}s" if isinstance(v, float) else f"{k} {v}"
                        for k, v in (step.get("timings") or {}).items())
    table = "".join(f'<tr><td class="k">{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>'
                    for k, v in rows if v)
    raw = html.escape(step.get("raw_text") or "")
    return (f'<div class="step"><div class="shot">{shot}</div><div class="text">'
            f'<h3>Step {int(step.get("index", 0))} {_badge(str(step.get("status", "?")))}</h3>'
            f'<table>{table}<tr><td class="k">timings</td><td>{html.escape(timings)}</td></tr></table>'
            f'<p class="k">model output</p><pre>{raw or "(none)"}</pre></div></div>')


def render_report(episode: Episode) -> str:
    result = episode.result
    meta = episode.meta
    head = (f"<h1>{html.escape(episode.task)}</h1>"
            f'<div class="meta">{_badge(str(result.get("status", "?")))} '
            f'{html.escape(str(result.get("reason") or ""))}<br>'
            f'{int(result.get("steps", len(episode.steps)))} steps · started {_when(meta.get("started_at"))} · '
            f'ended {_when(meta.get("ended_at"))} · policy {html.escape(json.dumps(meta.get("policy", {}), ensure_ascii=False))} · '
            f'environment {html.escape(json.dumps(meta.get("env", {}), ensure_ascii=False))}</div>')
    warnings = "".join(f'<p class="k">warning: {html.escape(w)}</p>' for w in episode.warnings)
    steps = "".join(_step_html(episode, s) for s in episode.steps)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(episode.task)}</title>'
            f'<style>{STYLE}</style></head><body>{head}{warnings}{steps or "<p>No steps recorded.</p>"}</body></html>')


def write_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` into the episode directory (or ``out``) and return its path."""
    episode = load_episode(path)
    target = Path(out) if out else episode.path / "report.html"
    target.write_text(render_report(episode), encoding="utf-8")
    return target
