"""Calibrate predict's "not sure": how often confident answers are right, and how many digits
are flagged, on the official test digits, for a range of thresholds of the best probability.

    python scripts/calibrate.py MODEL [--photos tests/data/photos]

For each official test digit (the embedded test set: never seen in training), the network's
answer and the shape doubts of :func:`digitnet.imaging.read_digits` (a dot or a block, ink at
the edge); for each threshold, the share of digits flagged "not sure" and the accuracy of the
answers left confident. With ``--photos``, the same through ``Predictor.read`` for the photo set
(scripts/make_photo_set.py). The threshold in use is the model's own,
``Predictor.confident_threshold()`` (calibrated on the first 500 test digits).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from digitnet.commands import model_path
from digitnet.data.datasets import load_embedded
from digitnet.errors import DigitnetError
from digitnet.imaging import read_digits, to_column
from digitnet.predictor import Predictor

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)


def table(best: np.ndarray, right: np.ndarray, doubt: np.ndarray, title: str, used: float) -> None:
    print(f"\n{title}: {best.size} digits, accuracy {right.mean():.2%}")
    print(f"  {'threshold':>9}  {'flagged':>8}  {'confident right':>15}  {'errors caught':>13}")
    for t in sorted({*THRESHOLDS, used}):
        sure = (best >= t) & ~doubt
        caught = (~sure & ~right).sum() / max(1, (~right).sum())
        mark = "  <- this model's threshold" if t == used else ""
        print(
            f"  {t:9.2f}  {1 - sure.mean():8.2%}  {right[sure].mean():15.2%}  {caught:13.1%}{mark}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--photos", type=Path, help="a photo set with its labels.json")
    args = parser.parse_args()
    predictor = Predictor(model_path(args.model))
    mnist = load_embedded()
    X, y = mnist.X_test, mnist.y_test
    doubt = np.array(
        [
            any(d.doubt for d in r.digits) or r.doubt is not None or len(r.digits) != 1
            for r in (read_digits(x.reshape(28, 28)) for x in X.T)
        ]
    )
    P = np.hstack([predictor.probabilities(to_column(x.reshape(28, 28))) for x in X.T])
    used = predictor.confident_threshold()
    table(P.max(axis=0), P.argmax(axis=0) == y, doubt, "official test digits", used)
    if args.photos:
        labels = json.loads((args.photos / "labels.json").read_text())
        best, right, flagged = [], [], []
        for name, item in labels.items():
            if len(item["number"]) != 1:
                continue
            try:
                answer, _ = predictor.read(args.photos / name)
            except DigitnetError:  # refused (no digit found): flagged, and not right
                best.append(0.0), right.append(False), flagged.append(True)
                continue
            d = answer["digits"][0] if answer["digits"] else None
            best.append(d["top3"][0][1] if len(answer["digits"]) == 1 else 0.0)
            right.append(answer["number"] == item["number"])
            flagged.append(any(e["reason"] and "%" not in e["reason"] for e in answer["digits"]))
        title = f"photo set {args.photos} (single digits)"
        table(np.array(best), np.array(right), np.array(flagged), title, used)
    return 0


if __name__ == "__main__":
    sys.exit(main())
