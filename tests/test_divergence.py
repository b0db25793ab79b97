"""Divergence is a clear stop (issue 13): a cost that explodes ends the run at once with a
learning rate worth trying; an accuracy stuck at chance is warned about."""

from __future__ import annotations

import pytest
from conftest import run_cli

from digitnet.train.divergence import GROWTH, suggest_lr, usual_lr


@pytest.mark.parametrize(
    "args, advice",
    [
        (["--lr", "1e6"], "--lr 0.001 (the usual for adam)"),
        (["--optimizer", "sgd", "--lr", "1e4"], "--lr 0.1 (the usual for sgd)"),
    ],
    ids=["adam-1e6", "sgd-1e4"],
)
def test_an_exploding_cost_stops_the_run_with_sensible_advice(args, advice, tmp_path):
    """Once: 9.7 % after every epoch, a cost of 3e17, exit 0, a full set of pictures (Adam); the
    hint for a NaN suggested --lr 1000 after 1e4. Now: stopped at the second batch."""
    r = run_cli("train", *args, "--epochs", "3", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1, r.stderr
    assert lines[0].startswith("error: The cost became ") and "at epoch 1, batch " in lines[0]
    assert "up from 2.5" in lines[0] and "training diverged with learning rate" in lines[0]
    assert lines[1] == f"hint: try a smaller learning rate, such as {advice}"
    assert len(lines) == 2 and "epoch 1/3" not in r.stdout
    assert not (tmp_path / "runs").exists()  # nothing to resume: the run folder is gone


def test_an_accuracy_stuck_at_chance_is_warned_about(tmp_path):
    """The sigmoid network saturates at once: its cost stays 0.1, its accuracy 10 %."""
    r = run_cli("train", "--preset", "sigmoid-mse", "--lr", "1e6", "--epochs", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, r.stderr
    assert "stayed at chance" in warnings[0] and "learning rate 1e+06" in warnings[0]
    assert "--lr 3 (the usual for sgd)" in warnings[0]
    assert "epoch 3/3" in r.stdout  # a warning: the run goes on


def test_full_batch_descent_is_not_warned_about_in_its_first_steps(tmp_path):
    """The tutorial's gradient descent takes one step an epoch: near chance after two."""
    r = run_cli("train", "--preset", "tutorial", "--epochs", "60", cwd=tmp_path)
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


def test_the_advice_is_in_a_sane_range():
    assert suggest_lr(1e6, "adam") == 1e-3 and suggest_lr(1e4, "sgd") == 0.1
    assert suggest_lr(0.05, "adam") == pytest.approx(5e-4)  # a hundredth, when that is lower
    assert usual_lr("sgd", "mse") == 3.0 and suggest_lr(1e6, "sgd", "mse") == 3.0
    assert GROWTH >= 100  # mini-batch noise is a factor of a few, not of a hundred
