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
class Pictures:
    """Where a command's pictures go (``--out``, else the model's folder), and what became of
    them. The results come first: a folder that cannot take the pictures (read-only, not
    writable, not a folder) is said after them, in one line with where to point ``--out``
    (:meth:`report`), instead of losing the results to a traceback."""

    def __init__(self, text: str | None, model: Path, command: str) -> None:
        self.explicit = text is not None
        self.folder = Path(text).expanduser() if text else model.parent
        self.model = model
        self.command = command
        self.problem: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.problem = _why(exc, self.folder)
        else:
            if not self.folder.is_dir():
                self.problem = f"{self.folder}: not a folder"

    def draw(self, drawing: Any) -> bool:
        """Call ``drawing()`` (which writes a picture into :attr:`folder`); whether it did."""
        if self.problem is not None:
            return False
        from digitnet.errors import DigitnetError

        try:
            drawing()
        except OSError as exc:
            self.problem = _why(exc, self.folder)
            return False
        except DigitnetError as exc:  # reports.py's "cannot write the picture", from an OSError
            cause = exc.__cause__ or exc.__context__
            why = _why(cause, self.folder) if isinstance(cause, OSError) else None
            self.problem = why or exc.message.rstrip(".")
            return False
        return True

    def report(self) -> int:
        """Say (on stderr) that the pictures could not be written, if so; the exit status: 1
        when the folder was asked for (``--out``), else 0 (the results are what was asked)."""
        if self.problem is None:
            return 0
        import shlex

        kind = "error" if self.explicit else "warning"
        print(f"{kind}: the pictures could not be written: {self.problem}.", file=sys.stderr)
        model = shlex.quote(str(self.model))
        print(
            f"hint: point --out at a folder you can write: digitnet {self.command} {model} "
            "--out DIR",
            file=sys.stderr,
        )
        return 1 if self.explicit else 0


def _why(exc: OSError, folder: Path) -> str:
    # (the folder, not the file: a picture is written through a temporary .part file in it)
    return f"{folder}: {exc.strerror or exc}"


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
        from digitnet.text import printable

        return printable(dataset["name"])  # (control characters escaped: it is printed)
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

    from digitnet import metrics, reports
    from digitnet.modelfile import load_model

    path = model_path(args.model)
    net, doc = load_model(path)
    data, chosen = _load_data(args, doc)
    _check_fit(net, data, path, chosen)
    pictures = Pictures(args.out, path, "evaluate")
    folder = pictures.folder

    P = net.predict_proba(data.X_test)
    y = data.y_test
    pred = P.argmax(axis=0)
    n_classes = len(data.classes)
    cm = metrics.confusion_matrix(y, pred, n_classes)
    rows = metrics.per_class(cm)
    n = int(cm.sum())
    correct = int(np.trace(cm))
    accuracy = correct / n

    cm_png, mistakes_png = folder / "confusion_matrix.png", folder / "mistakes.png"
    classes = list(data.classes)
    drew = pictures.draw(lambda: reports.plot_confusion_matrix(cm, cm_png, classes=classes))
    worst = metrics.most_confident_mistakes(P, y, k=N_MISTAKES)
    drew = drew and pictures.draw(
        lambda: reports.plot_mistakes(
            data.X_test[:, worst],
            y[worst],
            pred[worst],
            P[pred[worst], worst],
            mistakes_png,
            classes=classes,
        )
    )

    if args.json:
        result = {
            "model": str(path),
            "dataset": data.name,
            "accuracy": accuracy,
            "n": n,
            "per_class": rows,
            "confusion_matrix": cm.tolist(),
            "pictures": (
                {"confusion_matrix": str(cm_png), "mistakes": str(mistakes_png)} if drew else None
            ),
        }
        print(json.dumps(result, ensure_ascii=False), flush=True)
        return pictures.report()

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
    confusions = metrics.top_confusions(cm, k=5)
    if confusions:
        listed = ", ".join(f"{labels[t]} → {labels[p]} ({c:,})" for t, p, c in confusions)
        print(f"commonest mistakes (true → predicted): {listed}")
    print()
    shown = len(worst)
    if drew:
        print(f"wrote {cm_png}: the confusion matrix")
        print(
            f"wrote {mistakes_png}: the {shown} mistake{'s' if shown != 1 else ''} the model "
            "was surest of"
        )
    sys.stdout.flush()
    return pictures.report()
