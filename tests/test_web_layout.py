"""The page's layout for wide networks and phones, in a real browser (Chromium via Playwright).

A 784-1024-32-10 network (two epochs, a cosine schedule with warm-up) is served; the unit panel
of a layer-2 unit must lay its three strips (A¹, the row of W², the contributions) side by side
without overlap, the ⊙ and = signs visible between them, at 1280 and 1024 wide; on a 390-wide
phone the digit read must be on the first screen and the header must not lead with a file path;
the training view must draw the learning-rate schedule. Screenshots go to ``$DIGITNET_SHOTS``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright")
pytest.importorskip("starlette", reason="digitnet serve needs Starlette")

from conftest import run_cli
from playwright.sync_api import expect, sync_playwright
from web_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Pages,
    Server,
    click_unit,
    draw_digit,
    wait_settled,
)

if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium; never 'playwright install')",
        allow_module_level=True,
    )

SHOTS = Path(os.environ.get("DIGITNET_SHOTS", "/tmp/digitnet-shots"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    runs = tmp_path_factory.mktemp("layout") / "runs"
    run = runs / "wide"
    done = run_cli(
        "train", "--layers", "784-1024-32-10", "--epochs", "2", "--augment", "none",
        "--dropout", "0", "--out", str(run),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = runs.parent / "serve.log"
    with Server(str(run), "--runs", str(runs), log=log) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pages = Pages(browser, server.url)
        yield pages
        pages.close()
        browser.close()
    pages.assert_clean()


@pytest.fixture(scope="module")
def seven():
    from digitnet.data.datasets import load_embedded

    data = load_embedded()
    return data.X_test[:, 0].reshape(28, 28)  # MNIST's first test digit, a 7


def _box(locator) -> dict:
    box = locator.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    return box


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1024, 768)])
def test_a_layer_2_unit_lays_out_its_three_strips_side_by_side(served, seven, width, height):
    page = served.open(width=width, height=height)
    draw_digit(page, seven)
    wait_settled(page)
    click_unit(page, "grid-Z2", 7)
    detail = page.get_by_test_id("unit-detail")
    expect(detail).to_have_attribute("data-layer", "2")
    expect(page.get_by_test_id("unit-contrib").locator("canvas.grid")).to_have_attribute(
        "data-n", "1024"
    )
    strips = [_box(page.locator(f"#unit-{k}-box canvas")) for k in ("x", "w", "c")]
    ops = [_box(op) for op in page.locator("#unit-view .op").all()]
    assert len(ops) == 2
    # left to right: strip, ⊙, strip, =, strip; nothing overlaps its neighbour
    row = [strips[0], ops[0], strips[1], ops[1], strips[2]]
    for left, right in itertools.pairwise(row):
        assert left["x"] + left["width"] <= right["x"] + 0.5, (left, right)
    for strip in strips:
        assert abs(strip["width"] - strip["height"]) <= 1  # square, for any layer width
    detail.scroll_into_view_if_needed()
    detail.screenshot(path=str(SHOTS / f"layout-unit2-{width}.png"))


def test_the_phone_sees_the_digit_read_first(served, seven):
    page = served.open(width=390, height=844, device_scale_factor=2, is_mobile=True, has_touch=True)
    info = page.get_by_test_id("model-info")
    expect(info).to_contain_text("784-1024-32-10")
    assert "safetensors" not in info.inner_text()  # no file path leading the header
    draw_digit(page, seven)
    read = wait_settled(page)
    assert len(read) == 1 and read.isdigit()  # read as some digit: the layout is the point here
    page.evaluate("window.scrollTo(0, 0)")
    answer = _box(page.get_by_test_id("prediction"))
    assert answer["y"] + answer["height"] <= 844, "the digit read is below the first screen"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "layout-phone-first-screen.png"))
    click_unit(page, "grid-Z2", 7)
    strips = [_box(page.locator(f"#unit-{k}-box canvas")) for k in ("x", "w", "c")]
    for left, right in itertools.pairwise(strips):
        assert left["x"] + left["width"] <= right["x"] + 0.5
    assert strips[-1]["x"] + strips[-1]["width"] <= 390
    page.get_by_test_id("unit-detail").screenshot(path=str(SHOTS / "layout-unit2-390.png"))


def test_the_training_view_shows_the_learning_rate_schedule(served):
    page = served.open(path="/#training")
    chart = page.get_by_test_id("curves-lr")
    expect(chart).to_have_attribute("data-points", "2")
    assert chart.locator("circle").count() == 2
    note = page.get_by_test_id("lr-note")
    expect(note).to_contain_text("set per step by the run's schedule")
    expect(note).to_contain_text("fell to")
    expect(page.get_by_test_id("latest")).to_contain_text("α in the last epoch")
    page.screenshot(path=str(SHOTS / "layout-training-1280.png"), full_page=True)
