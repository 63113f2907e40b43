"""The synthetic grounding data: its boxes really cover the target element, and its answers are CogAgent text.

The check is done the way the agent acts: the answer is parsed with ``cogagent.grammar``, its box converted to a
pixel with ``vision.geometry`` (the same code the agent loop uses), the generated page is loaded again in a real
Chromium at the same viewport and the mouse clicks that pixel; the page's own click log must name the intended
element.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cogagent.grammar import ParseError, parse
from episodes import synthdata
from vision.geometry import ground

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    meta = synthdata.generate(out, n=4, seed=11, val_fraction=0.25, progress=False)
    rows = [json.loads(line) for name in ("train.jsonl", "val.jsonl")
            for line in (out / name).read_text(encoding="utf-8").splitlines()]
    return out, meta, rows


@pytest.fixture(scope="module")
def browser_page():
    from playwright.sync_api import sync_playwright

    from actuators.chromium import launch_chromium

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": synthdata.VIEWPORT[0], "height": synthdata.VIEWPORT[1]},
                                    device_scale_factor=1)
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()


def test_writes_the_documented_files(dataset):
    out, meta, rows = dataset
    assert meta["pages"] == 4 and meta["val_pages"] == 1
    assert meta["examples"]["train"] + meta["examples"]["val"] == len(rows) > 0
    val_pages = {json.loads(line)["target"]["page"] for line in (out / "val.jsonl").read_text().splitlines()}
    train_pages = {json.loads(line)["target"]["page"] for line in (out / "train.jsonl").read_text().splitlines()}
    assert val_pages and not val_pages & train_pages  # held-out pages are never trained on
    for row in rows:
        image = out / row["image"]
        assert image.is_file()
        with Image.open(image) as img:
            assert img.size == synthdata.VIEWPORT
        assert row["query"].startswith("What steps do I need to take to \"") and row["query"].endswith(
            "?(with grounding)")


def test_answers_parse_in_cogagent_grammar(dataset):
    _, _, rows = dataset
    verbs = set()
    for row in rows:
        turn = parse(row["answer"])
        assert not isinstance(turn, ParseError), row["answer"]
        assert turn.dialect == "18b-web"
        op = turn.operation
        assert op.verb == row["target"]["verb"] and op.box is not None and not op.warnings
        verbs.add(op.verb)
        if op.verb in ("TYPE", "SELECT"):
            assert op.value
        for query, answer in row["history"]:  # earlier steps are the same task, also in the grammar
            assert query == row["query"] and not isinstance(parse(answer), ParseError)
    assert "CLICK" in verbs


def test_box_centre_clicks_the_intended_element(dataset, browser_page):
    out, _, rows = dataset
    checked = 0
    for row in rows:
        if row["history"]:
            continue  # screenshots after earlier steps: the same boxes, checked on the page's first state
        html = (out / "pages" / f"{row['target']['page']}.html").read_text(encoding="utf-8")
        browser_page.set_content(html, wait_until="load")
        op = parse(row["answer"]).operation
        point = ground(op.box, synthdata.VIEWPORT).point
        browser_page.mouse.click(point.x, point.y)
        clicks = browser_page.evaluate("window.__clicks")
        assert clicks and clicks[-1] == row["target"]["id"], (row["answer"], point, clicks)
        x1, y1, x2, y2 = row["target"]["box_px"]
        assert x1 <= point.x <= x2 and y1 <= point.y <= y2
        checked += 1
    assert checked >= 4


def test_cli_rejects_bad_arguments(tmp_path):
    for args, message in ((["--n", "0"], "--n must be a positive"), (["--n", "2", "--val-fraction", "1.5"],
                                                                      "--val-fraction")):
        proc = subprocess.run([sys.executable, "-m", "episodes.synthdata", "--out", str(tmp_path / "x"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr


def test_elements_list_every_visible_widget_with_its_live_box(dataset, browser_page):
    out, _, rows = dataset
    for row in rows:
        elements = row["elements"]
        assert elements, row["image"]
        target = [e for e in elements if e["box_px"] == row["target"]["box_px"]]
        assert target and target[0]["kind"] == synthdata.ROLE[row["target"]["kind"]]
        assert f"[{target[0]['kind']}] {target[0]['label']} ->" in row["answer"]
    first = next(r for r in rows if not r["history"])
    html = (out / "pages" / f"{first['target']['page']}.html").read_text(encoding="utf-8")
    browser_page.set_content(html, wait_until="load")
    for element in first["elements"]:  # each box's centre is on a widget of that name
        x1, y1, x2, y2 = element["box_px"]
        hit = browser_page.evaluate(
            "([x, y]) => { const e = document.elementFromPoint(x, y); const w = e && e.closest('[data-w]');"
            " return w ? (w.getAttribute('aria-label') || (w.labels && w.labels[0] && w.labels[0].textContent)"
            " || w.textContent) : null; }", [(x1 + x2) / 2, (y1 + y2) / 2])
        assert hit is not None and element["label"] in hit, (element, hit)


def test_all_targets_gives_one_example_per_widget_of_the_first_screen(tmp_path):
    # through the CLI, in its own process (a module fixture already runs Playwright's sync API in this one)
    proc = subprocess.run([sys.executable, "-m", "episodes.synthdata", "--out", str(tmp_path), "--n", "2", "--seed",
                           "5", "--val-fraction", "0", "--all-targets", "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert meta["all_targets"] is True
    for page in {r["target"]["page"] for r in rows}:
        first = [r for r in rows if r["target"]["page"] == page and r["image"].endswith("-0.png")]
        single = {r["target"]["id"] for r in first if not r["history"]}
        assert len(single) >= len(first[0]["elements"])  # every visible widget is a target at least once
