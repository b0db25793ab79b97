"""The page's backward view in a real browser (Debian's Chromium driven by Playwright), as
``test_web_page.py`` tests the forward view: an official test digit drawn with the mouse, a
label other than the prediction chosen, "Step until it reads N", the numbers shown checked
against the API, reset, the gradient-check badge, no console errors. Screenshots at 1280x800
and 390x844 go to ``$DIGITNET_SHOTS`` (default ``/tmp/digitnet-shots``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright")
pytest.importorskip("starlette", reason="digitnet serve needs Starlette")

from conftest import run_cli
from web_helpers import (
    CHROMIUM,
    draw_digit,
    pad_png,
    request,
    wait_settled,
)

if not CHROMIUM.is_file():
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)

SHOTS = Path(os.environ.get("DIGITNET_SHOTS", "/tmp/digitnet-shots"))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("backward") / "runs"


@pytest.fixture(scope="module")
def model(runs_dir) -> Path:
    """The seed-16-16 preset (784-16-16-10, ReLU, label smoothing as digitnet trains), 4 epochs:
    a few seconds, and it reads clear digits right."""
    run = runs_dir / "served"
    done = run_cli(
        "train", "--preset", "seed-16-16", "--epochs", "4", "--seed", "0", "--out", str(run)
    )
    assert done.returncode == 0, done.stderr
    return run / "model.safetensors"


@pytest.fixture(scope="module")
def digit(model) -> np.ndarray:
    """An official test digit the model reads right, with a runner-up worth stepping to."""
    from digitnet.data.datasets import load_embedded
    from digitnet.predictor import Predictor

    data = load_embedded()
    P = Predictor(model).probabilities(data.X_test[:, :200])
    ok = np.flatnonzero((P.argmax(axis=0) == data.y_test[:200]) & (P.max(axis=0) > 0.9))
    return data.X_test[:, ok[0]].reshape(28, 28)


def backward_ready(page, **attrs: str) -> None:
    sel = "[data-testid=backward][data-state=ready]" + "".join(
        f"[data-{k}='{v}']" for k, v in attrs.items()
    )
    page.wait_for_selector(sel, state="attached", timeout=20_000)


def gradcheck_done(page) -> float:
    badge = page.get_by_test_id("gradcheck")
    page.wait_for_selector(
        "[data-testid=gradcheck][data-value]:not([data-state=busy])", timeout=20_000
    )
    return float(badge.get_attribute("data-value"))


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=["desktop", "phone"])
def test_teach_the_drawn_digit_another_label(pages, server, model, digit, size):
    before_file = model.read_bytes()
    page = pages.open(width=size[0], height=size[1])
    draw_digit(page, digit)
    predicted = int(wait_settled(page))
    backward_ready(page, label=predicted, prediction=predicted, steps=0)
    card = page.get_by_test_id("backward")
    # the label is the prediction until the learner chooses; its button is pressed
    assert page.get_by_test_id(f"label-{predicted}").get_attribute("aria-pressed") == "true"
    error = gradcheck_done(page)
    assert error < 1e-6
    text = page.get_by_test_id("gradcheck").text_content()
    assert "backprop = finite differences" in text and "largest relative error" in text
    assert float(text.rsplit(" ", 1)[1]) < 1e-6  # the badge's text holds the error

    # choose the runner-up among the probabilities the page shows
    probs = [float(page.get_by_test_id(f"prob-{d}").get_attribute("data-value")) for d in range(10)]
    target = int(np.argsort(probs)[-2])
    assert target != predicted
    page.get_by_test_id(f"label-{target}").click()
    backward_ready(page, label=target, prediction=predicted)
    session = card.get_attribute("data-session")
    cost = float(page.get_by_test_id("cost").get_attribute("data-value"))
    shot_name = f"backward-{size[0]}x{size[1]}"
    card.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{shot_name}-chosen.png"))

    page.get_by_test_id("step-until").click()
    backward_ready(page, label=target, prediction=target)
    steps = int(card.get_attribute("data-steps"))
    assert steps >= 1
    assert page.get_by_test_id("after").locator(".col-big").text_content() == str(target)
    assert page.get_by_test_id("before").locator(".col-big").text_content() == str(predicted)
    assert card.get_attribute("data-session") == session  # the same tab, the same copy

    # the numbers shown are the API's: the same pad, label and session, asked again
    status, doc = request(
        f"{server.url}/api/backprop?label={target}&session={session}", pad_png(page), "image/png"
    )
    assert status == 200 and doc["steps_taken"] == steps and doc["prediction"] == target
    shown = float(page.get_by_test_id("cost").get_attribute("data-value"))
    assert shown == pytest.approx(doc["C"], rel=1e-9) and shown < cost
    for k in range(10):
        bar = float(page.get_by_test_id(f"dz-{k}").get_attribute("data-value"))
        assert bar == pytest.approx(doc["output"]["dZ"][k], rel=1e-9, abs=1e-12)
    off = page.get_by_test_id("off-1")
    if off.count():
        assert int(off.text_content()) == doc["layers"][0]["off"]
    page.get_by_test_id("backward").screenshot(path=str(SHOTS / f"{shot_name}-stepped.png"))

    # the forward view still shows the served model: only this tab's copy moved
    assert page.get_by_test_id("prediction").text_content() == str(predicted)
    page.get_by_test_id("reset").click()
    backward_ready(page, prediction=predicted, steps=0)
    assert float(page.get_by_test_id("cost").get_attribute("data-value")) == pytest.approx(cost)
    assert model.read_bytes() == before_file


def test_two_tabs_have_their_own_copies(pages, digit):
    a = pages.open()
    b = pages.open()
    for page in (a, b):
        draw_digit(page, digit)
        wait_settled(page)
        backward_ready(page, steps=0)
    assert a.get_by_test_id("backward").get_attribute("data-session") != b.get_by_test_id(
        "backward"
    ).get_attribute("data-session")
    a.get_by_test_id("step").click()
    backward_ready(a, steps=1)
    b.get_by_test_id("label-3").click()  # b asks again: still the trained model
    backward_ready(b, label=3, steps=0)
