"""``digitnet evaluate``: how well a trained model reads the test set, digit by digit.

Loads a model file (or the run folder holding one), loads the data (by default the dataset the
model was trained on, as its file records), classifies every test image and reports the
accuracy, each digit's precision, recall, F1 and support, and the confusion matrix; then draws
``confusion_matrix.png`` and ``mistakes.png`` (the 25 mistakes the model was surest of). With
``--json`` stdout holds one JSON object and nothing else.

Only the standard library is imported at the top: NumPy, the model file reader and matplotlib
load in the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from digitnet.commands import MODEL_FILE, Formatter, model_path, warn

#: how many of the surest mistakes mistakes.png shows
N_MISTAKES = 25

EVALUATE_EXAMPLES = """\
examples:
  digitnet evaluate runs/best                   # a run folder holding model.safetensors
  digitnet evaluate runs/best/model.safetensors --out report   # pictures into report/
  digitnet evaluate runs/best --dataset mnist --offline        # the full MNIST test set, cached
  digitnet evaluate runs/best --data-dir ~/mnist               # the test files of a folder
  digitnet evaluate runs/best --json > eval.json               # for scripts

writes, into --out (default: the model's folder):
  confusion_matrix.png   the test set's confusion matrix, counts in the cells
  mistakes.png           the 25 misread test images the model was surest of

--json prints one JSON object on stdout, nothing else (pictures are still written):
  {"model": PATH, "dataset": NAME, "accuracy": FLOAT, "n": INT,
   "per_class": [{"digit": 0, "precision": F, "recall": F, "f1": F, "support": INT}, ... 10],
   "confusion_matrix": [[10 counts], ... 10 rows],   (row = true digit, column = predicted)
   "pictures": {"confusion_matrix": PATH, "mistakes": PATH}}
accuracy = trace / n = the trace of the confusion matrix over its sum. Precision of a digit
never predicted, and recall of a digit absent from the data, are 0/0, reported as 0.0.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from digitnet.data.sources import DATASET_NAMES

    evaluate = sub.add_parser(
        "evaluate",
        help="measure a trained model on the test set: per-digit scores, confusion matrix",
        description="Classify every test image with a trained model and report the accuracy, "
        "each digit's precision (of the images predicted as the digit, the share that are), "
        "recall (of the digit's images, the share found), F1 and support, and the confusion "
        "matrix (row = true digit, column = predicted). Draws the confusion matrix and the "
        "model's surest mistakes as PNG pictures. The data are, unless given, the dataset the "
        "model was trained on, as its file records (embedded when that was a folder).",
        epilog=EVALUATE_EXAMPLES,
        formatter_class=Formatter,
    )
    evaluate.add_argument(
        "model",
        metavar="MODEL",
        help=f"a model file, or a run folder holding {MODEL_FILE} ('digitnet train --out DIR')",
    )
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        help="the data to evaluate on (default: the dataset recorded in the model file, if it "
        "is one of these, else embedded)",
    )
    source.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder with the four MNIST-format IDX files (gzipped or not); its test files "
        "are used",
    )
    evaluate.add_argument(
        "--offline",
        action="store_true",
        help="never use the network: only --data-dir, the cache and system packages",
    )
    evaluate.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object on stdout and nothing else (see below)",
    )
    evaluate.add_argument(
        "--out",
        metavar="DIR",
        help="the folder for confusion_matrix.png and mistakes.png (default: the model's folder)",
    )
    evaluate.set_defaults(handler=cmd_evaluate)


# -- shared with ``digitnet inspect`` -------------------------------------------------------
def out_dir(text: str | None, model: Path) -> Path:
    """The folder for the pictures (``--out``, else the model's folder), created if needed."""
    from digitnet.errors import DigitnetError

    folder = Path(text).expanduser() if text else model.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DigitnetError(
            f"{folder}: cannot create the folder for the pictures ({exc.strerror or exc}).",
            "give a writable folder with --out",
        ) from None
    if not folder.is_dir():
        raise DigitnetError(f"{folder}: not a folder.", "give a folder with --out")
    return folder


def layer_spec(doc: dict[str, Any]) -> str:
    """``"784-32-10 (relu)"``: the dense sizes and the hidden activations, from the document."""
    dense = [layer for layer in doc["architecture"] if layer["kind"] == "dense"]
    sizes = [dense[0]["n_in"]] + [layer["n_out"] for layer in dense]
    kinds = []
    for layer in doc["architecture"][:-1]:
        if layer["kind"] not in ("dense", "dropout") and layer["kind"] not in kinds:
            kinds.append(layer["kind"])
    spec = "-".join(str(s) for s in sizes)
    return f"{spec} ({', '.join(kinds)})" if kinds else spec


def recorded_dataset(doc: dict[str, Any]) -> str | None:
    """The name of the data the model was trained on, as its file records, if it does."""
    dataset = doc.get("dataset")
    if isinstance(dataset, dict) and isinstance(dataset.get("name"), str):
        return dataset["name"]
    return None


# -- the command ----------------------------------------------------------------------------
def _load_data(args: argparse.Namespace, doc: dict[str, Any]) -> tuple[Any, bool]:
    """The dataset to evaluate on, and whether the user chose it (rather than the default)."""
    from digitnet.data.datasets import load_dataset
    from digitnet.data.sources import DATASET_NAMES, DOWNLOADABLE

    recorded = recorded_dataset(doc)
    if args.data_dir is not None:
        # a folder: name it after the recorded dataset when that is known, for its class names
        name = recorded if recorded in DOWNLOADABLE else None
        return load_dataset(name, data_dir=args.data_dir, offline=args.offline), True
    if args.dataset is not None:
        name, chosen = args.dataset, True
    elif recorded in DATASET_NAMES:
        name, chosen = recorded, False
    else:
        name, chosen = "embedded", False
        if recorded is not None:
            print(
                f"note: the model was trained on {recorded}, not a dataset digitnet knows by "
                "name; evaluating on the embedded test digits (give --data-dir to choose)",
                file=sys.stderr,
            )
    data = load_dataset(name, offline=args.offline, on_warning=warn)
    return data, chosen


def _check_fit(net: Any, data: Any, path: Path, chosen: bool) -> None:
    """The model's input and output sizes must be the data's pixels and classes."""
    from digitnet.errors import DataError, ModelFileError

    error = DataError if chosen else ModelFileError
    n_pixels, n_classes = int(data.X_test.shape[0]), len(data.classes)
    if net.n_inputs != n_pixels:
        raise error(
            f"{path}: the model takes {net.n_inputs} inputs, but the images of {data.name} have "
            f"{n_pixels} pixels.",
            "evaluate a model on data of the kind it was trained on (28x28 images: 784 pixels)",
        )
    if net.n_outputs != n_classes:
        raise error(
            f"{path}: the model has {net.n_outputs} outputs, but {data.name} has {n_classes} "
            "classes.",
            "evaluate a model on data of the kind it was trained on (10 classes)",
        )
    if data.n_test == 0:
        raise DataError(f"{data.name}: the test set holds no images.")


def _per_class_table(rows: list[dict[str, Any]], labels: list[str], what: str) -> list[str]:
    width = max(len(what), *(len(s) for s in labels), len("macro avg"))
    lines = [f"{what:>{width}}  precision  recall      f1  support"]
    for row, label in zip(rows, labels, strict=True):
        lines.append(
            f"{label:>{width}}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:6.4f}"
            f"  {row['support']:>7,}"
        )
    k = len(rows)
    macro = [sum(r[key] for r in rows) / k for key in ("precision", "recall", "f1")]
    total = sum(r["support"] for r in rows)
    lines.append(
        f"{'macro avg':>{width}}  {macro[0]:9.4f}  {macro[1]:6.4f}  {macro[2]:6.4f}  {total:>7,}"
    )
    return lines


def _matrix_table(cm: Any, labels: list[str], what: str) -> list[str]:
    """The confusion matrix as text: long class names label the rows, indices the columns."""
    n = cm.shape[0]
    short = all(len(s) <= 5 for s in labels)
    columns = labels if short else [str(i) for i in range(n)]
    rows = labels if short else [f"{i} {s}" for i, s in enumerate(labels)]
    corner = "true \\ predicted"
    head = max(len(corner), *(len(s) for s in rows))
    cell = max(len(f"{int(cm.max()):,}"), *(len(s) for s in columns)) + 2
    lines = [f"{corner:>{head}}" + "".join(f"{c:>{cell}}" for c in columns)]
    for i in range(n):
        counts = "".join(f"{int(cm[i, j]):>{cell},}" for j in range(n))
        lines.append(f"{rows[i]:>{head}}" + counts)
    return lines


def _labels(classes: list[str]) -> tuple[list[str], str]:
    digits = list(classes) == [str(d) for d in range(len(classes))]
    return [str(c) for c in classes], "digit" if digits else "class"


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from digitnet import reports
    from digitnet.modelfile import load_model

    path = model_path(args.model)
    net, doc = load_model(path)
    data, chosen = _load_data(args, doc)
    _check_fit(net, data, path, chosen)
    folder = out_dir(args.out, path)

    P = net.predict_proba(data.X_test)
    y = data.y_test
    pred = P.argmax(axis=0)
    n_classes = len(data.classes)
    cm = reports.confusion_matrix(y, pred, n_classes)
    rows = reports.per_class(cm)
    n = int(cm.sum())
    correct = int(np.trace(cm))
    accuracy = correct / n

    cm_png, mistakes_png = folder / "confusion_matrix.png", folder / "mistakes.png"
    reports.plot_confusion_matrix(cm, cm_png, classes=list(data.classes))
    worst = reports.most_confident_mistakes(P, y, k=N_MISTAKES)
    reports.plot_mistakes(
        data.X_test[:, worst],
        y[worst],
        pred[worst],
        P[pred[worst], worst],
        mistakes_png,
        classes=list(data.classes),
    )

    if args.json:
        result = {
            "model": str(path),
            "dataset": data.name,
            "accuracy": accuracy,
            "n": n,
            "per_class": rows,
            "confusion_matrix": cm.tolist(),
            "pictures": {"confusion_matrix": str(cm_png), "mistakes": str(mistakes_png)},
        }
        print(json.dumps(result, ensure_ascii=False))
        return 0

    labels, what = _labels(list(data.classes))
    print(f"model: {path}: {layer_spec(doc)}, {net.n_parameters:,} parameters", end="")
    recorded = recorded_dataset(doc)
    print(f", trained on {recorded}" if recorded else "")
    print(f"data: {data.name}: {n:,} test images ({data.source})")
    print(f"test accuracy {100 * accuracy:.2f}% ({correct:,} of {n:,} right)")
    print()
    print("\n".join(_per_class_table(rows, labels, what)))
    print(
        f"precision: of the images predicted as a {what}, the share that are one; recall: of a "
        f"{what}'s\nimages, the share found; F1: their harmonic mean; 0/0 counts as 0"
    )
    print()
    print(f"confusion matrix (row = true {what}, column = predicted {what}):")
    print("\n".join(_matrix_table(cm, labels, what)))
    confusions = reports.top_confusions(cm, k=5)
    if confusions:
        listed = ", ".join(f"{labels[t]} → {labels[p]} ({c:,})" for t, p, c in confusions)
        print(f"commonest mistakes (true → predicted): {listed}")
    print()
    shown = len(worst)
    print(f"wrote {cm_png}: the confusion matrix")
    print(
        f"wrote {mistakes_png}: the {shown} mistake{'s' if shown != 1 else ''} the model was "
        "surest of"
    )
    return 0
