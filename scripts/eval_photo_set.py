"""Read the photo test set (scripts/make_photo_set.py) with ``digitnet predict``'s own reading
(:meth:`digitnet.predictor.Predictor.read`) and report, per condition, the accuracy next to the
same digits' clean accuracy (the network on the official 28x28 test digits themselves).

    python scripts/eval_photo_set.py MODEL PHOTOS [--show DIR]

A photo counts as read right when its whole number is (one digit, or all the digits of a number,
and no digit more or less). "not sure" answers count at their best guess; the share flagged is
shown beside.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from digitnet.commands import model_path
from digitnet.data.datasets import load_embedded
from digitnet.errors import DigitnetError
from digitnet.predictor import Predictor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("photos", type=Path)
    args = parser.parse_args()
    predictor = Predictor(model_path(args.model))
    mnist = load_embedded()
    labels = json.loads((args.photos / "labels.json").read_text())
    clean = {}  # test index -> the network's answer on the clean digit
    rows: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    misread = defaultdict(list)
    for name, item in labels.items():
        index = item["test_index"]
        answers = predictor.probabilities(mnist.X_test[:, index]).argmax(axis=0)
        clean_number = "".join(str(int(a)) for a in answers)
        for i, a in zip(index, answers, strict=True):
            clean[i] = int(a)
        try:
            answer, _ = predictor.read(args.photos / name)
            number, sure = answer["number"], answer["confident"]
        except DigitnetError:
            number, sure = "", False
        right = number == item["number"]
        rows[item["condition"]].append((right, clean_number == item["number"], not sure))
        if not right:
            misread[item["condition"]].append(f"{name}: {number or '-'} for {item['number']}")
    print(
        f"{'condition':<12} {'photos':>6} {'photo acc':>9} {'clean acc':>9} {'gap':>6} "
        f"{'not sure':>8}"
    )
    singles = []
    for condition, r in rows.items():
        a = np.array(r)
        gap = 100 * (a[:, 0].mean() - a[:, 1].mean())
        print(
            f"{condition:<12} {len(a):6d} {a[:, 0].mean():9.1%} {a[:, 1].mean():9.1%} "
            f"{gap:+6.1f} {a[:, 2].mean():8.1%}"
        )
        if condition != "number":
            singles.extend(r)
    a = np.array(singles)
    print(
        f"{'all digits':<12} {len(a):6d} {a[:, 0].mean():9.1%} {a[:, 1].mean():9.1%} "
        f"{100 * (a[:, 0].mean() - a[:, 1].mean()):+6.1f} {a[:, 2].mean():8.1%}"
    )
    for condition, names in misread.items():
        print(f"\nmisread ({condition}): " + "; ".join(names[:12]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
