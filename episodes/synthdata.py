"""Synthetic grounding data: random pages built from the bundled site's widgets, rendered by a real Chromium.

Why: a CogAgent learns to ground an instruction only from screenshots paired with boxes, and the boxes are only
right if they come from the page that was drawn. Every page here is random HTML made of the widgets of
``episodes/webapp/site/style.css`` (buttons, links, text fields, dropdowns, checkboxes, switches) with
varied labels, fonts, sizes, colours and layouts; Chromium renders it at 1280x800 (the web suite's viewport),
and the target's box is read from the live DOM and written in CogAgent-18B's own words::

    Next Action: Click the Save button.
    Grounded Operation:[button] Save -> CLICK at the box [[412,530,488,571]]

with per-axis 0-999 coordinates from ``vision.geometry.box_to_norm`` (what the model's squashed-square view
means). Each page holds one small task of one to three steps (type into fields, choose options, tick boxes, then
press a button); the later steps are rendered *after* the earlier ones were really performed (text typed, option
chosen), and carry the earlier steps as history, as the agent loop sends it. A few single-step targets on the
same screenshot are added per page.

Output (the JSONL format ``cogagent.train`` reads, one example per line, paths relative to the file)::

    {"image": "images/p000012-0.png", "query": "What steps do I need to take to \\"...\\"?(with grounding)",
     "answer": "Next Action: ...\\nGrounded Operation:[...] ... at the box [[...]]",
     "history": [["<query>", "<answer of step 1>"]],            # earlier steps of the same task (optional)
     "target": {"id": "w3", "kind": "button", "box_px": [x1, y1, x2, y2], "page": "p000012"}}

CLI: ``python -m episodes.synthdata --out DIR --n PAGES --seed S [--val-fraction 0.1]`` writes
``DIR/images/*.png``, ``DIR/pages/*.html`` (each generated page, to re-render it), ``DIR/train.jsonl``,
``DIR/val.jsonl`` (validation pages are whole pages never seen in training) and ``DIR/meta.json``.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from cogagent.prompts import agent_query
from vision.geometry import box_to_norm

VIEWPORT = (1280, 800)
SITE_CSS = Path(__file__).parent / "webapp" / "site" / "style.css"

FONTS = ("DejaVu Sans", "DejaVu Serif", "Liberation Sans", "Liberation Serif", "Liberation Sans Narrow",
         "DejaVu Sans Condensed", "Noto Sans CJK SC")
BUTTON_COLOURS = ("#1d5fd1", "#2e7d32", "#c62f2f", "#6a1b9a", "#ef6c00", "#00838f", "#37474f", "#ad1457")
BACKGROUNDS = ("#f4f6f9", "#ffffff", "#eef2f7", "#fbf7ef", "#f1f8f4", "#f7f1fb")

BUTTON_WORDS = ("Submit", "Save", "Save changes", "Cancel", "Log in", "Sign in", "Sign up", "Search", "Next",
                "Continue", "Add to cart", "Delete", "Apply", "Book now", "Send", "Accept", "Reject all",
                "Add", "Done", "Confirm", "Back", "Upload", "Download", "Checkout", "Subscribe", "Register",
                "Reset", "Update", "Create account", "Buy now", "Close", "OK", "Edit", "Share", "Refresh",
                "Go", "Start", "Pay now", "Place order", "Remove", "Archive", "Print", "Export", "Import")
LINK_WORDS = ("Help", "About us", "Privacy", "Shop", "Docs", "Contact", "Blog", "Pricing", "Read more",
              "Home", "Careers", "Settings", "Profile", "News", "Support", "Terms", "Forum", "Downloads",
              "Account", "Orders", "Gallery", "Events", "FAQ", "Sitemap", "Press", "Team", "Library",
              "Weather today", "New release notes", "Getting started", "Open the article", "View all")
FIELD_WORDS = ("Username", "Password", "Email", "First name", "Last name", "City", "ZIP code", "Phone",
               "Search", "Street", "Company", "Title", "Comment", "Nights", "Guests", "Check-in date",
               "New item", "Full name", "Country code", "Coupon", "Website", "Age", "Message", "Subject",
               "Address", "Job title", "Quantity", "Amount", "Note", "Query")
VALUES = ("alice", "bob", "CogVLM", "Jane Doe", "jane@example.com", "Springfield", "49007", "hello world",
          "Buy milk", "12 Harbor Street", "2024-06-14", "3", "2", "42", "Berlin", "Paris", "tokyo", "weather",
          "sunflower42", "secret123", "Call mom", "John Smith", "lamp", "news", "555-0100", "Acme Inc",
          "Great work", "10", "7", "blue", "Water the plants", "CogAgent", "London", "Oslo", "pizza")
SELECTS = {
    "Country": ("United States", "Canada", "Germany", "France", "Japan", "Brazil", "India", "Cameroon"),
    "Size": ("Small", "Medium", "Large", "Extra large"),
    "Colour": ("Red", "Green", "Blue", "Black", "White"),
    "Language": ("English", "Deutsch", "Français", "Español"),
    "Shipping speed": ("Standard (5 days)", "Express (2 days)", "Overnight"),
    "Plan": ("Free", "Monthly", "Annual"),
    "Font size": ("Small", "Medium", "Large"),
    "Sort by": ("Newest", "Oldest", "Price", "Rating"),
    "Theme": ("Light", "Dark", "System"),
    "Month": ("January", "February", "March", "April", "May", "June"),
}
TOGGLE_WORDS = ("Remember me", "Email notifications", "Dark mode", "I agree to the terms", "Weekly summary",
                "Push notifications", "Subscribe to newsletter", "Two-factor authentication", "Auto update",
                "Show images", "Location access", "Sound effects", "Gift wrap", "Public profile")
TITLES = ("Settings", "Sign in", "Checkout", "Contact us", "Your profile", "Preferences", "New order",
          "Register", "Search", "Booking", "Account", "Feedback", "Shipping", "Notifications", "Welcome")
BRANDS = ("Lumen", "Acme", "Nimbus", "Orbit", "Pixel Shop", "Harbor", "Zenith", "Maple")

ROLE = {"button": "button", "link": "link", "field": "textbox", "select": "combobox", "checkbox": "checkbox",
        "switch": "switch", "tab": "tab"}

# Records which widget a click landed on, and keeps links from navigating away from the generated page.
CLICK_SCRIPT = """
window.__clicks = [];
document.addEventListener('click', function (e) {
  var w = e.target.closest ? e.target.closest('[data-w]') : null;
  window.__clicks.push(w ? w.getAttribute('data-w') : null);
  if (e.target.closest && e.target.closest('a')) e.preventDefault();
}, true);
"""


@dataclass
class Widget:
    """One interactive element of a generated page. ``label`` is the text a person would name it by."""

    wid: str
    kind: str  # button | link | field | select | checkbox | switch | tab
    label: str
    options: tuple[str, ...] = ()
    html: str = ""


@dataclass
class Step:
    widget: Widget
    verb: str  # CLICK | TYPE | SELECT
    value: str | None = None

    def describe(self) -> str:
        w = self.widget
        if self.verb == "TYPE":
            return f"Type '{self.value}' into the {w.label} field."
        if self.verb == "SELECT":
            return f"Choose {self.value} in the {w.label} dropdown."
        if w.kind in ("checkbox", "switch"):
            return f"Click the {w.label} toggle."
        return f"Click the {w.label} {'link' if w.kind == 'link' else 'tab' if w.kind == 'tab' else 'button'}."


@dataclass
class Page:
    html: str
    widgets: list[Widget]
    task: list[Step]
    instruction: str
    extra: list[tuple[str, Step]] = field(default_factory=list)  # single-step (instruction, step) targets


# ----------------------------------------------------------------------------------------------------- pages
class PageMaker:
    """Random pages from the site's widgets; deterministic for a given ``random.Random``."""

    def __init__(self, rng: random.Random, css: str, all_targets: bool = False) -> None:
        self.rng = rng
        self.css = css
        self.count = 0
        self.all_targets = all_targets  # a single-step target per widget, not one to three per page

    def _id(self) -> str:
        self.count += 1
        return f"w{self.count}"

    def _pick(self, words: Sequence[str], used: set[str]) -> str:
        choices = [w for w in words if w not in used] or list(words)
        word = self.rng.choice(choices)
        used.add(word)
        return word

    def widget(self, kind: str, used: set[str]) -> Widget:
        r, wid = self.rng, self._id()
        if kind == "button":
            label = self._pick(BUTTON_WORDS, used)
            cls = r.choice(("", "", "secondary", "danger"))
            style = ""
            if not cls and r.random() < 0.6:
                style = f' style="background:{r.choice(BUTTON_COLOURS)};border-color:{r.choice(BUTTON_COLOURS)}"'
            if r.random() < 0.3:
                pad = f"padding:{r.randint(5, 14)}px {r.randint(12, 34)}px"
                style = style[:-1] + ";" + pad + '"' if style else f' style="{pad}"'
            return Widget(wid, kind, label, html=f'<button type="button" id="{wid}" data-w="{wid}" class="{cls}"{style}>'
                                                 f'{html.escape(label)}</button>')
        if kind == "link":
            label = self._pick(LINK_WORDS, used)
            return Widget(wid, kind, label, html=f'<a href="#" id="{wid}" data-w="{wid}">{html.escape(label)}</a>')
        if kind == "field":
            label = self._pick(FIELD_WORDS, used)
            itype = "password" if label == "Password" else "email" if label == "Email" else "text"
            hint = f' placeholder="{html.escape(r.choice(VALUES))}"' if r.random() < 0.3 else ""
            return Widget(wid, kind, label, html=(
                f'<label class="field" for="{wid}">{html.escape(label)}'
                f'<input id="{wid}" data-w="{wid}" type="{itype}"{hint}></label>'))
        if kind == "select":
            label = self._pick(tuple(SELECTS), used)
            options = SELECTS[label]
            opts = "".join(f"<option>{html.escape(o)}</option>" for o in options)
            return Widget(wid, kind, label, options, html=(
                f'<label class="field" for="{wid}">{html.escape(label)}<select id="{wid}" data-w="{wid}">{opts}'
                f'</select></label>'))
        if kind == "checkbox":
            label = self._pick(TOGGLE_WORDS, used)
            if r.random() < 0.5:  # a settings line: text left, box right (the site's settings page)
                return Widget(wid, kind, label, html=(
                    f'<div class="setting"><div><div class="title">{html.escape(label)}</div>'
                    f'<div class="desc">{html.escape(r.choice(TITLES))} option</div></div>'
                    f'<input id="{wid}" data-w="{wid}" type="checkbox" aria-label="{html.escape(label)}"></div>'))
            return Widget(wid, kind, label, html=(
                f'<p><input id="{wid}" data-w="{wid}" type="checkbox"><span>{html.escape(label)}</span></p>'))
        if kind == "switch":
            label = self._pick(TOGGLE_WORDS, used)
            return Widget(wid, kind, label, html=(
                f'<div class="setting"><div><div class="title">{html.escape(label)}</div></div>'
                f'<label class="switch" id="{wid}" data-w="{wid}" aria-label="{html.escape(label)}">'
                f'<input type="checkbox"><span class="knob"></span></label></div>'))
        raise ValueError(f"unknown widget kind {kind!r}")

    def page(self) -> Page:
        r = self.rng
        used: set[str] = set()
        widgets: list[Widget] = []
        body: list[str] = []
        font = r.choice(FONTS)
        size = r.randint(13, 19)
        bg = r.choice(BACKGROUNDS)
        if r.random() < 0.6:  # a top bar with navigation links
            links = [self.widget("link", used) for _ in range(r.randint(2, 5))]
            widgets += links
            body.append(f'<header class="topbar" style="background:{r.choice(BUTTON_COLOURS + ("#20324f",))}">'
                        f'<span class="brand">{r.choice(BRANDS)}</span><nav>'
                        + "".join(w.html.replace("<a ", '<a style="color:#fff" ') for w in links) + "</nav></header>")
        layout = r.choice(("form", "form", "settings", "grid", "toolbar"))
        width = r.randint(360, 900)
        title = f"<h1>{html.escape(r.choice(TITLES))}</h1>" if r.random() < 0.8 else ""
        inner: list[Widget] = []
        if layout == "form":
            kinds = r.choices(("field", "select", "checkbox"), weights=(5, 2, 2), k=r.randint(1, 4))
            inner = [self.widget(k, used) for k in kinds]
            buttons = [self.widget("button", used) for _ in range(r.randint(1, 2))]
            card = "".join(w.html for w in inner) + '<div class="row">' + "".join(b.html for b in buttons) + "</div>"
            inner += buttons
            body.append(f'<main style="max-width:{width}px">{title}<div class="card">{card}</div>')
        elif layout == "settings":
            kinds = r.choices(("checkbox", "switch", "select"), weights=(3, 3, 1), k=r.randint(2, 4))
            inner = [self.widget(k, used) for k in kinds]
            button = self.widget("button", used)
            inner.append(button)
            body.append(f'<main style="max-width:{width}px">{title}<div class="card">'
                        + "".join(w.html for w in inner[:-1]) + f"</div>{button.html}")
        elif layout == "grid":
            cols = r.randint(2, 3)
            cells = []
            for _ in range(cols):
                w1 = self.widget(r.choice(("button", "link")), used)
                w2 = self.widget(r.choice(("button", "field", "link")), used)
                inner += [w1, w2]
                cells.append(f'<div class="card"><h2>{html.escape(r.choice(TITLES))}</h2>'
                             f'<p class="muted">{html.escape(r.choice(LINK_WORDS))} and more.</p>'
                             f'<p>{w2.html}</p><p>{w1.html}</p></div>')
            body.append(f'<main style="max-width:{max(width, 700)}px">{title}'
                        f'<div class="grid" style="grid-template-columns:repeat({cols},1fr)">' + "".join(cells) + "</div>")
        else:  # toolbar: a row of buttons and links above some text
            inner = [self.widget(r.choice(("button", "button", "link")), used) for _ in range(r.randint(2, 5))]
            body.append(f'<main style="max-width:{max(width, 600)}px">{title}<div class="card"><div class="row" '
                        f'style="flex-wrap:wrap">' + "".join(w.html for w in inner) + "</div>"
                        f'<p class="muted">{html.escape(r.choice(TITLES))}: choose an action above.</p></div>')
        widgets += inner
        body.append(f'<p class="muted" style="margin-top:{r.randint(0, 80)}px">{html.escape(r.choice(BRANDS))} '
                    f"{r.randint(2019, 2025)}</p></main>")
        style = (f"body {{ font-family: '{font}', sans-serif; font-size: {size}px; background: {bg}; }} "
                 f"main {{ margin-top: {r.randint(8, 90)}px; margin-left: {r.choice(('auto', str(r.randint(10, 300)) + 'px'))}; }}")
        doc = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><style>{self.css}</style><style>{style}</style>'
               f"</head><body>{''.join(body)}<script>{CLICK_SCRIPT}</script></body></html>")
        task, instruction = self.task(inner or widgets)
        extra = []
        k = len(widgets) if self.all_targets else min(len(widgets), r.randint(1, 3))
        for w in r.sample(widgets, k=k):
            step = self.step_for(w)
            extra.append((self.single_instruction(step), step))
        return Page(doc, widgets, task, instruction, extra)

    def step_for(self, w: Widget) -> Step:
        if w.kind == "field":
            return Step(w, "TYPE", self.rng.choice(VALUES))
        if w.kind == "select":
            return Step(w, "SELECT", self.rng.choice(w.options[1:] or w.options))
        return Step(w, "CLICK")

    def single_instruction(self, step: Step) -> str:
        r, w = self.rng, step.widget
        if step.verb == "TYPE":
            return r.choice((f"Type '{step.value}' into the {w.label} field", f"Enter {step.value} as the {w.label}",
                             f"Fill in the {w.label} with {step.value}", f"Put {step.value} in the {w.label} box"))
        if step.verb == "SELECT":
            return r.choice((f"Select {step.value} in the {w.label} dropdown", f"Change the {w.label} to {step.value}",
                             f"Choose {step.value} as the {w.label}", f"Set {w.label} to {step.value}"))
        if w.kind in ("checkbox", "switch"):
            return r.choice((f"Turn on {w.label}", f"Check {w.label}", f"Enable {w.label}",
                             f"Click the {w.label} toggle", f"Switch on {w.label}"))
        if w.kind == "link":
            return r.choice((f"Open the {w.label} link", f"Click {w.label}", f"Go to {w.label}",
                             f"Click on the link '{w.label}'", f"Open {w.label}"))
        return r.choice((f"Click the {w.label} button", f"Press {w.label}", f"Click on '{w.label}'",
                         f"Hit the {w.label} button", f"Click {w.label}"))

    def task(self, widgets: list[Widget]) -> tuple[list[Step], str]:
        """One to three steps: fill/choose/tick up to two widgets, then press a button (when there is one)."""
        r = self.rng
        inputs = [w for w in widgets if w.kind in ("field", "select", "checkbox", "switch")]
        buttons = [w for w in widgets if w.kind == "button"]
        if not inputs or not buttons or r.random() < 0.25:
            step = self.step_for(r.choice(widgets))
            return [step], self.single_instruction(step)
        chosen = r.sample(inputs, k=min(len(inputs), r.randint(1, 2)))
        steps = [self.step_for(w) for w in chosen] + [Step(r.choice(buttons), "CLICK")]
        parts = []
        for s in steps[:-1]:
            w = s.widget
            parts.append(f"{w.label.lower()} {s.value}" if s.verb != "CLICK" else f"turn on {w.label.lower()}")
        final = steps[-1].widget.label
        joined = " and ".join(parts)
        instruction = r.choice((f"Set {joined}, then click {final}", f"Fill in {joined} and press {final}",
                                f"Use {joined}, then {final.lower()}"))
        return steps, instruction


# ----------------------------------------------------------------------------------------------------- answers
def format_answer(step: Step, box_norm: tuple[int, int, int, int]) -> str:
    """CogAgent-18B's web dialect for one step (as ``WebScriptPolicy`` writes it, without the plan line)."""
    w = step.widget
    target = "[[" + ",".join(f"{v:03d}" for v in box_norm) + "]]"
    op = {"CLICK": "CLICK", "TYPE": f"TYPE: {step.value}", "SELECT": f"SELECT: {step.value}"}[step.verb]
    return f"Next Action: {step.describe()}\nGrounded Operation:[{ROLE[w.kind]}] {w.label} -> {op} at the box {target}"


# ----------------------------------------------------------------------------------------------------- rendering
class Renderer:
    """One Chromium page reused for every generated page (a browser start costs seconds; a page load, ms)."""

    def __init__(self, viewport: tuple[int, int] = VIEWPORT) -> None:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415

        from actuators.chromium import launch_chromium  # noqa: PLC0415

        self.viewport = viewport
        self._pw = sync_playwright().start()
        try:
            self.browser = launch_chromium(self._pw)
            self.page = self.browser.new_page(viewport={"width": viewport[0], "height": viewport[1]},
                                              device_scale_factor=1)
            self.page.set_default_timeout(10_000)
        except Exception:
            self._pw.stop()
            raise

    def load(self, doc: str) -> None:
        self.page.set_content(doc, wait_until="load")

    def perform(self, step: Step) -> None:
        """Do a step the way the browser actuator does it (click, then type; select the option)."""
        loc = self.page.locator(f"#{step.widget.wid}")
        if step.verb == "TYPE":
            loc.click()
            self.page.keyboard.type(step.value or "")
        elif step.verb == "SELECT":
            loc.select_option(label=step.value)
        else:
            loc.click()

    def screenshot(self, path: Path) -> None:
        self.page.screenshot(path=str(path))

    def boxes(self) -> dict[str, tuple[float, float, float, float]]:
        return visible_boxes(self.page, self.viewport)

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


def visible_boxes(page: Any, viewport: tuple[int, int]) -> dict[str, tuple[float, float, float, float]]:
    """Every widget's CSS box (``data-w`` -> x1, y1, x2, y2) on a Playwright page, in one round trip; only the
    ones wholly inside the viewport (a target the screenshot does not show cannot be an example)."""
    rects = page.evaluate(
        "() => Array.from(document.querySelectorAll('[data-w]')).map(e => {"
        " const r = e.getBoundingClientRect(); return [e.getAttribute('data-w'), r.left, r.top, r.right,"
        " r.bottom]; })")
    w, h = viewport
    return {wid: (x1, y1, x2, y2) for wid, x1, y1, x2, y2 in rects
            if x2 - x1 >= 2 and y2 - y1 >= 2 and x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h}


def pixel_box(css_box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Inclusive pixel corners of a CSS box at device scale 1 (the last pixel row/column is x2-1, y2-1)."""
    x1, y1, x2, y2 = css_box
    return (int(round(x1)), int(round(y1)), int(round(x2)) - 1, int(round(y2)) - 1)


def screen_elements(boxes: dict[str, tuple[float, float, float, float]], page: Page) -> list[dict[str, Any]]:
    """What is on the screen now (``boxes`` from :meth:`Renderer.boxes`): every wholly visible widget's kind (as
    the grammar names it), label and pixel box. Training can supervise the encoders densely with it
    (``cogagent.train --dense-weight``): each patch learns which widget it shows, not only the one patch the
    answer names."""
    by_id = {w.wid: w for w in page.widgets}
    return [{"kind": ROLE[by_id[wid].kind], "label": by_id[wid].label, "box_px": list(pixel_box(css))}
            for wid, css in boxes.items() if wid in by_id]


def render_page(renderer: Renderer, page: Page, out_dir: Path, name: str) -> list[dict[str, Any]]:
    """Render one page, perform its task step by step, and return its examples (image paths relative to
    ``out_dir``), each with the ``elements`` on its screen. Steps whose element is not wholly on screen are
    dropped (the task stops there)."""
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    size = renderer.viewport
    renderer.load(page.html)
    examples: list[dict[str, Any]] = []

    def example(image: str, instruction: str, step: Step, history: list[list[str]],
                boxes: dict[str, tuple[float, float, float, float]]) -> dict[str, Any] | None:
        css = boxes.get(step.widget.wid)
        if css is None:
            return None
        px = pixel_box(css)
        answer = format_answer(step, box_to_norm(px, size))
        return {"image": image, "query": agent_query(instruction), "answer": answer, "history": history,
                "target": {"id": step.widget.wid, "kind": step.widget.kind, "verb": step.verb, "box_px": list(px),
                           "page": name}, "elements": screen_elements(boxes, page)}

    pages = out_dir / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    (pages / f"{name}.html").write_text(page.html, encoding="utf-8")  # to re-render and check the boxes later
    first = f"images/{name}-0.png"
    renderer.screenshot(out_dir / first)
    boxes = renderer.boxes()  # one round trip per screen: the targets' boxes and the elements come from it
    for instruction, step in page.extra:
        ex = example(first, instruction, step, [], boxes)
        if ex:
            examples.append(ex)
    history: list[list[str]] = []
    for index, step in enumerate(page.task):
        image = first
        if index:
            image = f"images/{name}-{index}.png"
            renderer.screenshot(out_dir / image)
            boxes = renderer.boxes()
        ex = example(image, page.instruction, step, [list(h) for h in history], boxes)
        if ex is None:
            break
        examples.append(ex)
        history.append([ex["query"], ex["answer"]])
        if index + 1 < len(page.task):
            renderer.perform(step)
    return examples


def generate(out: str | Path, n: int, seed: int = 0, val_fraction: float = 0.1,
             progress: bool = True, all_targets: bool = False) -> dict[str, Any]:
    """Write ``n`` random pages' examples under ``out`` (see the module docstring); returns the meta dict."""
    if n <= 0:
        raise ValueError(f"--n must be a positive number of pages, got {n}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    maker = PageMaker(rng, SITE_CSS.read_text(encoding="utf-8"), all_targets)
    n_val = int(round(n * val_fraction)) if n > 1 else 0
    val_pages = set(rng.sample(range(n), k=n_val))
    counts = {"train": 0, "val": 0}
    t0 = time.perf_counter()
    renderer = Renderer()
    try:
        with open(out / "train.jsonl", "w", encoding="utf-8") as train, \
                open(out / "val.jsonl", "w", encoding="utf-8") as val:
            for i in range(n):
                split = "val" if i in val_pages else "train"
                page = maker.page()
                for ex in render_page(renderer, page, out, f"p{i:06d}"):
                    (val if split == "val" else train).write(json.dumps(ex, ensure_ascii=False) + "\n")
                    counts[split] += 1
                if progress and (i + 1) % 50 == 0:
                    print(f"{i + 1}/{n} pages, {counts} examples, {time.perf_counter() - t0:.0f} s",
                          file=sys.stderr, flush=True)
    finally:
        renderer.close()
    meta = {"pages": n, "seed": seed, "val_fraction": val_fraction, "val_pages": n_val, "all_targets": all_targets,
            "examples": counts,
            "viewport": list(VIEWPORT), "seconds": round(time.perf_counter() - t0, 1)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return meta


def iter_examples(path: str | Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m episodes.synthdata", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (images/, train.jsonl, val.jsonl, meta.json)")
    ap.add_argument("--n", type=int, required=True, help="number of random pages to render")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.1, help="share of pages held out for val.jsonl")
    ap.add_argument("--all-targets", action="store_true",
                    help="a single-step example for every widget of each page (dense grounding data)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        meta = generate(args.out, args.n, args.seed, args.val_fraction, progress=not args.quiet,
                        all_targets=args.all_targets)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
