"""The page of ``digitnet serve`` in a real browser: Debian's Chromium driven by Playwright.

A model is trained once for the module (784-128-10, 15 epochs on the embedded digits, a few
seconds) and served by a real ``digitnet serve`` subprocess. Digits are drawn on the pad the way
a person draws them, with the mouse (pointer events), never as injected pixels. Every test fails
on a console error or an uncaught exception in the page. Screenshots at 1280x800 and 390x844 go
to ``$DIGITNET_SHOTS`` (default ``/tmp/digitnet-shots``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright")
pytest.importorskip("starlette", reason="digitnet serve needs Starlette")
pytest.importorskip("uvicorn", reason="digitnet serve needs uvicorn")

from conftest import run_cli
from playwright.sync_api import expect
from web_helpers import (
    CHROMIUM,
    PredictRequests,
    click_unit,
    draw_digit,
    pad_png,
    request,
    subprocess_env,
    wait_settled,
)

if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium; never 'playwright install')",
        allow_module_level=True,
    )

SHOTS = Path(os.environ.get("DIGITNET_SHOTS", "/tmp/digitnet-shots"))
LIVE_EPOCHS = 15


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("web") / "runs"
    runs.mkdir()
    return runs


@pytest.fixture(scope="module")
def model(runs_dir) -> Path:
    """A model that reads clear digits well: 784-128-10, Adam, 15 epochs, no label smoothing
    and no generated non-digits (so that "clearly written" can mean a confidence of 99 %)."""
    run = runs_dir / "served"
    done = run_cli(
        "train",
        "--layers",
        "784-128-10",
        "--optimizer",
        "adam",
        "--lr",
        "0.001",
        "--epochs",
        "15",
        "--label-smoothing",
        "0",
        "--outliers",
        "0",
        "--seed",
        "0",
        "--out",
        str(run),
    )
    assert done.returncode == 0, done.stderr
    return run / "model.safetensors"


@pytest.fixture(scope="module")
def digits(model) -> list[tuple[int, np.ndarray]]:
    """One clearly written test digit per class: the first that the model reads correctly
    with a probability of at least 0.99 from the clean MNIST test image."""
    from digitnet.data.datasets import load_embedded
    from digitnet.predictor import Predictor

    data = load_embedded()
    P = Predictor(model).probabilities(data.X_test)
    picked = []
    for d in range(10):
        clear = np.flatnonzero((data.y_test == d) & (P[d] >= 0.99))
        assert clear.size, f"the model reads no test {d} with 99 % confidence"
        picked.append((d, data.X_test[:, clear[0]].reshape(28, 28)))
    return picked


def shot(page, name: str, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def image28_pixels(page) -> np.ndarray:
    """The 28x28 canvas the page shows as the network's input, as grey levels 0-255."""
    data = page.evaluate(
        """() => { const c = document.querySelector('[data-testid=image28]');
                   return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data); }"""
    )
    return np.array(data, dtype=float).reshape(28, 28, 4)[..., 0]


def test_drawn_digits_are_read_and_shown_as_the_api_reads_them(pages, server, digits):
    page = pages.open()
    predicts = PredictRequests(page)
    prediction = page.get_by_test_id("prediction")
    expect(prediction).to_have_text("")
    results = []
    for d, image in digits:
        draw_digit(page, image)
        shown = wait_settled(page)
        # the page's own pixels, sent by us, get the answer the page shows
        status, answer = request(f"{server.url}/api/predict", pad_png(page), "image/png")
        assert status == 200, answer
        # (a drawing the model is not sure of shows "not sure" instead of a digit)
        assert shown == (str(answer["prediction"]) if answer["confident"] else "not sure"), d
        results.append((d, shown))
        # the bars and the 28x28 input are those of the same answer
        top = page.get_by_test_id(f"prob-{answer['prediction']}")
        expect(top).to_have_class(re.compile(r"\btop\b"))
        assert float(top.get_attribute("data-value")) == pytest.approx(
            answer["probabilities"][answer["prediction"]]
        )
        seen = image28_pixels(page)
        assert np.abs(seen - 255 * np.array(answer["image28"])).max() <= 1.0
        if d == 7:
            shot(page, "desktop-draw")
            shot(page, "desktop-draw-full", full_page=True)
        page.get_by_test_id("clear").click()
        expect(prediction).to_have_text("")
        expect(prediction).to_have_attribute("data-state", "empty")
    correct = [d for d, shown in results if shown == str(d)]
    assert len(correct) >= 9, f"read correctly: {correct}; (drawn, shown): {results}"
    # debounced: far fewer requests than pointer moves, and never two at once
    assert predicts.sent >= 10 and predicts.most_in_flight == 1
    pages.assert_clean()


def test_undo_and_an_empty_pad_send_nothing(pages, digits):
    page = pages.open()
    predicts = PredictRequests(page)
    prediction = page.get_by_test_id("prediction")
    box = page.get_by_test_id("pad").bounding_box()
    draw_digit(page, digits[0][1])
    assert wait_settled(page) == "0"
    # one more stroke (a slash through the 0), then undo it: the 0 again
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.8)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.2, steps=8)
    page.mouse.up()
    wait_settled(page)
    page.get_by_test_id("undo").click()
    assert wait_settled(page) == "0"
    # undo every stroke (Ctrl+Z): an empty pad, never sent (the server would answer 400, which
    # the browser logs as a console error: pages.assert_clean would fail)
    page.get_by_test_id("pad").focus()
    while page.get_by_test_id("undo").is_enabled():
        page.keyboard.press("Control+z")
    expect(prediction).to_have_attribute("data-state", "empty")
    expect(prediction).to_have_text("")
    expect(page.get_by_test_id("clear")).to_be_disabled()
    assert predicts.most_in_flight == 1
    page.get_by_test_id("pad").press("Escape")  # clearing an empty pad: nothing happens
    expect(prediction).to_have_attribute("data-state", "empty")
    pages.assert_clean()


def test_clicking_a_unit_shows_its_weights_and_z(pages, server, digits):
    page = pages.open()
    draw_digit(page, digits[3][1])
    wait_settled(page)
    status, answer = request(f"{server.url}/api/predict", pad_png(page), "image/png")
    assert status == 200
    Z1 = np.array(next(layer["values"] for layer in answer["layers"] if layer["name"] == "Z1"))
    unit = int(np.argsort(Z1)[-2])  # a strongly active unit (not the one shown first)

    click_unit(page, "grid-Z1", unit)
    detail = page.get_by_test_id("unit-detail")
    expect(detail).to_have_attribute("data-unit", str(unit))
    expect(detail).to_have_attribute("data-layer", "1")
    z = page.get_by_test_id("unit-z")
    expect(z).to_have_attribute("data-value", re.compile(r"\d"))
    assert float(z.get_attribute("data-value")) == pytest.approx(Z1[unit], abs=1e-2)
    expect(z).to_contain_text("Z")
    weights = page.get_by_test_id("unit-weights").locator("canvas")
    contrib = page.get_by_test_id("unit-contrib").locator("canvas")
    for canvas in (weights, contrib):
        expect(canvas).to_have_attribute("width", "28")
        expect(canvas).to_be_visible()

    # the colours: the unit's largest weight red, its smallest blue; no ink, no contribution
    status, w = request(f"{server.url}/api/weights/1/{unit}")
    assert status == 200 and len(w["weights"]) == 784
    rgb = np.array(
        page.evaluate(
            """() => Array.from(document.querySelector('[data-testid=unit-weights] canvas')
                 .getContext('2d').getImageData(0, 0, 28, 28).data)"""
        )
    ).reshape(784, 4)
    hi, lo = int(np.argmax(w["weights"])), int(np.argmin(w["weights"]))
    assert rgb[hi, 0] > rgb[hi, 2] + 60, "the largest weight is not red"
    assert rgb[lo, 2] > rgb[lo, 0] + 60, "the smallest weight is not blue"
    c = np.array(
        page.evaluate(
            """() => Array.from(document.querySelector('[data-testid=unit-contrib] canvas')
                 .getContext('2d').getImageData(0, 0, 28, 28).data)"""
        )
    ).reshape(784, 4)
    blank = np.flatnonzero(np.array(answer["image28"]).ravel() == 0)
    assert (c[blank, :3] == 247).all(), "a pixel without ink contributes"

    # an output unit: its 128 incoming weights as a grid, the hidden layer's layout
    page.get_by_test_id(f"out-{answer['prediction']}").click()
    expect(detail).to_have_attribute("data-layer", "2")
    expect(detail).to_have_attribute("data-unit", str(answer["prediction"]))
    expect(page.get_by_test_id("unit-weights").locator("canvas.grid")).to_have_attribute(
        "data-n", "128"
    )
    Z2 = next(layer["values"] for layer in answer["layers"] if layer["name"] == "Z2")
    assert float(z.get_attribute("data-value")) == pytest.approx(Z2[answer["prediction"]], abs=1e-2)
    pages.assert_clean()


SNAPSHOT = """() => [
  document.querySelector('[data-testid=epochs-done]').textContent,
  document.querySelector('[data-testid=run-status]').textContent,
  document.querySelector('[data-testid=curves]').dataset.points,
]"""


def epochs_shown_at_least(n: int) -> str:
    return f"() => +document.querySelector('[data-testid=epochs-done]').textContent >= {n}"


def test_training_view_follows_a_run_live(pages, server, runs_dir, tmp_path):
    page = pages.open("/#training")
    picker = page.get_by_test_id("run-picker")
    expect(picker.locator('option[value="served"]')).to_be_attached()

    run = runs_dir / "live"
    log = (tmp_path / "train.log").open("w")
    train = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "digitnet",
            "train",
            "--layers",
            "784-32-10",
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
            "--batch-size",
            "2",
            "--augment",
            "none",
            "--dropout",
            "0",
            "--epochs",
            str(LIVE_EPOCHS),
            "--seed",
            "1",
            "--out",
            str(run),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(),
    )
    try:
        expect(picker.locator('option[value="live"]')).to_be_attached(timeout=60_000)
        picker.select_option("live")
        page.wait_for_function(epochs_shown_at_least(1), timeout=60_000)
        first, status, points = page.evaluate(SNAPSHOT)
        assert int(first) < LIVE_EPOCHS, "the run ended before the page showed it in progress"
        assert status == "training"
        assert points == first
        expect(page.get_by_test_id("epochs-total")).to_have_text(str(LIVE_EPOCHS))

        page.wait_for_function(epochs_shown_at_least(int(first) + 1), timeout=60_000)
        second, _, points = page.evaluate(SNAPSHOT)
        assert int(second) > int(first) and points == second

        weights = page.get_by_test_id("weights-img")
        expect(weights).to_be_visible()
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=weights-img]');"
            " return i.complete && i.naturalWidth > 0; }"
        )
        early_version = weights.get_attribute("data-version")
        shot(page, "desktop-training-live", full_page=True)

        expect(page.get_by_test_id("run-status")).to_have_text("finished", timeout=180_000)
        assert train.wait(timeout=60) == 0, (tmp_path / "train.log").read_text()
    finally:
        if train.poll() is None:
            train.terminate()
            train.wait(timeout=30)
        log.close()
    expect(page.get_by_test_id("epochs-done")).to_have_text(str(LIVE_EPOCHS))
    expect(page.get_by_test_id("curves")).to_have_attribute("data-points", str(LIVE_EPOCHS))
    expect(page.locator("[data-testid=curves] circle.pt.train")).to_have_count(LIVE_EPOCHS)
    expect(page.locator("[data-testid=curves] circle.pt.val")).to_have_count(LIVE_EPOCHS)
    expect(weights).not_to_have_attribute("data-version", early_version or "")
    shot(page, "desktop-training")
    pages.assert_clean()


NO_EVENT_SOURCE = """
delete window.EventSource;
window.fetched = [];
const fetchFirst = window.fetch;
window.fetch = (url, options) => {
  window.fetched.push(String(url));
  return fetchFirst(url, options);
};
"""


def test_training_view_polls_without_event_source(pages, server):
    """Where EventSource is missing (or its stream fails), the page polls the run's history."""
    page = pages.open("/#training", init_script=NO_EVENT_SOURCE)
    page.get_by_test_id("run-picker").select_option("served")
    expect(page.get_by_test_id("run-status")).to_have_text("finished")
    expect(page.get_by_test_id("epochs-done")).to_have_text("15")
    expect(page.get_by_test_id("curves")).to_have_attribute("data-points", "15")
    expect(page.get_by_test_id("weights-img")).to_be_visible()
    fetched = page.evaluate("window.fetched")
    assert "/api/runs/served/history" in fetched, fetched
    pages.assert_clean()


def no_sideways_scroll(page, width: int) -> None:
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= width, f"the page scrolls sideways: {scroll_width} px > {width} px"


def test_phone_layout(pages, digits):
    page = pages.open(width=390, height=844, device_scale_factor=2, is_mobile=True, has_touch=True)
    box = page.get_by_test_id("pad").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert box["width"] >= 300, "the pad should use the phone's width"
    no_sideways_scroll(page, 390)

    # a finger's stroke draws, and does not scroll the page
    cdp = page.context.new_cdp_session(page)

    def touch(kind: str, *points: tuple[float, float]) -> None:
        cdp.send(
            "Input.dispatchTouchEvent",
            {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in points]},
        )

    x, top = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2
    scroll_before = page.evaluate("window.scrollY")
    touch("touchStart", (x, top))
    for k in range(1, 13):
        touch("touchMove", (x, top + k * box["height"] * 0.05))
    touch("touchEnd")
    assert wait_settled(page) == "1"
    assert page.evaluate("window.scrollY") == scroll_before
    page.get_by_test_id("clear").click()
    expect(page.get_by_test_id("prediction")).to_have_text("")

    draw_digit(page, digits[7][1])
    assert wait_settled(page) == "7"
    no_sideways_scroll(page, 390)
    shot(page, "phone-draw")
    shot(page, "phone-draw-full", full_page=True)

    page.get_by_test_id("tab-training").click()
    expect(page.get_by_test_id("curves").locator("svg")).to_be_visible()
    expect(page.get_by_test_id("weights-img")).to_be_visible()
    no_sideways_scroll(page, 390)
    shot(page, "phone-training", full_page=True)
    pages.assert_clean()
