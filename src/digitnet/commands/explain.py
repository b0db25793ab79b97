"""``digitnet explain``: backpropagation on one image, every equation of the seeds with numbers.

For one image and its label (by default the digit the model reads), prints in an 80-column
terminal: the forward pass with this model's shapes, the cost, the backward pass layer by layer
(the output error per class, each hidden ``dZˡ`` with the units ``g'`` switched off, ``dWˡ`` and
``dbˡ``), one unit's row of ``dW¹`` as a 28x28 picture, the gradient check, and with
``--steps K`` the gradient-descent steps ``θ := θ - α dθ`` on a copy of the model. ``--json``
prints every quantity instead. The numbers come from :mod:`digitnet.explain`.

Only the standard library is imported at the top: NumPy and the model reader load in the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from digitnet.commands import MODEL_FILE, Formatter, model_path

EXPLAIN_EXAMPLES = """\
examples:
  digitnet explain runs/best seven.png             # why the model reads what it reads
  digitnet explain runs/best seven.png --label 1   # the backward pass towards a 1
  digitnet explain runs/best seven.png --label 1 --steps 5 --lr 0.05
  digitnet explain runs/best seven.png --label 1 --steps 200 --until
  digitnet explain runs/best test:0                # the official MNIST test digit 0 (a 7)
  digitnet explain runs/best seven.png --json      # every quantity, as JSON

The model file never changes: the steps move a copy, which is forgotten afterwards.
"""

#: IMAGE may name an official MNIST test digit instead of a file: test:0 ... test:9999
TEST_PREFIX = "test:"
#: arrays up to this many numbers are written whole by --json; larger ones are summarised
JSON_FULL = 4096
#: the characters of the 28x28 text picture, from 0 to the largest magnitude
RAMP = " .:-=+*#%@"


def _digit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a digit from 0 to 9; got {text!r}") from None
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"must be a digit from 0 to 9; got {text!r}")
    return value


def _steps(text: str) -> int:
    from digitnet.explain import MAX_STEPS

    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_STEPS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_STEPS}; got {text!r}"
        )
    return value


def _alpha(text: str) -> float:
    from digitnet.explain import MAX_ALPHA

    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0.0 < value <= MAX_ALPHA):  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"must be a positive number at most {MAX_ALPHA:g}; got {text!r}"
        )
    return value


def register(sub: argparse._SubParsersAction) -> None:
    explain = sub.add_parser(
        "explain",
        help="watch backpropagation on one image: every equation with its numbers",
        description="Run the forward and backward pass of training on one image and its label "
        "and print every equation of the seeds with this model's shapes and numbers: the "
        "forward pass, the cost C, the output error dZᴸ, each hidden layer's dZˡ with the "
        "units g' switched off, dWˡ and dbˡ, one unit's row of dW¹ as a 28x28 picture, and the "
        "gradient check (backpropagation against finite differences). With --steps, takes "
        "gradient-descent steps θ := θ - α dθ on a copy of the model and shows the prediction "
        "and cost after each.",
        epilog=EXPLAIN_EXAMPLES,
        formatter_class=Formatter,
    )
    explain.add_argument(
        "model",
        metavar="MODEL",
        help=f"a model file, or a run folder holding {MODEL_FILE} ('digitnet train --out DIR')",
    )
    explain.add_argument(
        "image",
        metavar="IMAGE",
        help="an image file with one digit (PNG, JPEG, ...), or test:N for the N-th official "
        "MNIST test digit (0-9999)",
    )
    explain.add_argument(
        "--label",
        type=_digit,
        metavar="N",
        help="the digit the image should be (default: the digit the model reads)",
    )
    explain.add_argument(
        "--steps",
        type=_steps,
        default=0,
        metavar="K",
        help="take K gradient-descent steps on a copy of the model (at most 1000)",
    )
    explain.add_argument(
        "--until",
        action="store_true",
        help="stop stepping as soon as the model reads the label (at most --steps, or 1000 steps)",
    )
    explain.add_argument(
        "--lr",
        type=_alpha,
        default=0.01,
        metavar="α",
        help="the learning rate α of the steps (at most 100)",
    )
    explain.add_argument(
        "--json", action="store_true", help="print every quantity as one JSON object"
    )
    explain.set_defaults(handler=cmd_explain)


# -- reading the inputs -------------------------------------------------------------------------
def _is_model(text: str) -> bool:
    path = Path(text).expanduser()
    return path.suffix == ".safetensors" or (path / MODEL_FILE).is_file()


def _load_model(args: argparse.Namespace) -> Any:
    from digitnet.errors import ModelFileError
    from digitnet.predictor import Predictor

    try:
        return Predictor(model_path(args.model))
    except ModelFileError as exc:
        if _is_model(args.image) and not _is_model(args.model):
            raise ModelFileError(
                exc.message,
                f"the model comes first: digitnet explain {args.image} {args.model}",
            ) from None
        raise


def _load_image(text: str) -> tuple[Any, str]:
    """The (28, 28) image the network reads, and where it came from."""
    from digitnet.errors import ConfigError
    from digitnet.imaging import preprocess

    if text.startswith(TEST_PREFIX) and not Path(text).exists():
        from digitnet.explain import official_test_digit

        number = text[len(TEST_PREFIX) :]
        if not number.isdigit() or not 0 <= int(number) <= 9999:
            raise ConfigError(
                f"{text}: the official test digits are test:0 to test:9999.",
                "give an image file, or test:N with N from 0 to 9999",
            )
        image, label = official_test_digit(int(number))
        return image, f"official MNIST test digit {int(number)} (labelled {label})"
    return preprocess(text), text


# -- numbers as text ----------------------------------------------------------------------------
SUP = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def sup(n: int | str) -> str:
    """``3`` -> ``³``: the seeds' layer superscripts."""
    return str(n).translate(SUP)


def num(v: float, width: int = 0) -> str:
    """A number for reading: 4 decimals when that shows it, else scientific notation."""
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        text = str(v)
    elif v == 0:
        text = "0"
    elif 1e-4 <= abs(v) < 1e5:
        text = f"{v:.4g}"
    else:
        text = f"{v:.2e}"
    return f"{text:>{width}}"


def snum(v: float, width: int = 0) -> str:
    """A signed number (``+0.0123``) for gradients."""
    text = num(v)
    if not text.startswith("-") and text not in ("0", "nan"):
        text = "+" + text
    return f"{text:>{width}}"


def percent(p: float) -> str:
    value = 100.0 * float(p)
    if 99.95 <= value < 100.0:
        return ">99.9 %"
    if 0.0 < value < 0.05:
        return "<0.1 %"
    return f"{value:.1f} %"


def bar(v: float, scale: float, width: int = 12) -> str:
    """A signed bar: left of | for negative, right for positive."""
    n = 0 if scale <= 0 or v != v else min(width, round(abs(v) / scale * width))
    left = ("█" * n if v < 0 else "").rjust(width)
    right = ("█" * n if v > 0 else "").ljust(width)
    return f"{left}|{right}"


def summary(a: Any) -> str:
    """``range -0.4102 .. 1.2031, ‖·‖ = 3.1416`` for an array."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64)
    return f"range {num(a.min())} .. {num(a.max())}, norm {num(np.linalg.norm(a))}"


def picture(values: Any) -> list[str]:
    """784 values as 28 lines of 56 characters: ``RAMP`` by magnitude, two per pixel."""
    import numpy as np

    v = np.abs(np.asarray(values, dtype=np.float64).reshape(28, 28))
    top = v.max()
    levels = np.zeros(v.shape, dtype=int) if top == 0 else np.ceil(v / top * (len(RAMP) - 1))
    return ["".join(RAMP[int(k)] * 2 for k in row) for row in levels]


def shape(a: Any) -> str:
    return " x ".join(str(s) for s in a.shape)


def eq(left: str, a: Any, detail: str) -> str:
    """One equation line: the equation, the shape of its result, what its numbers are."""
    return f"   {left:<20} {shape(a):>9}   {detail}"


# -- the lesson ---------------------------------------------------------------------------------
def _g_name(kind: str) -> str:
    return {"leaky_relu": "leaky_relu", "identity": "identity"}.get(kind, kind)


def _off_text(lb: Any) -> str:
    kind, units, s = lb.activation, lb.units, sup(lb.layer)
    off, sat = int(lb.off[0]), int(lb.saturated[0])
    if kind == "relu":
        return f"g' switched off {off} of {units} units (Z{s} ≤ 0): their dZ{s} is 0"
    if kind == "leaky_relu":
        return f"{off} of {units} units on the leaky side (Z{s} ≤ 0): g' is the slope there"
    if kind in ("sigmoid", "tanh", "arctan"):
        return f"{sat} of {units} units saturated (g' under 1 % of its peak)"
    return ""


def lesson(
    pred: Any, bp: Any, gc: Any, steps: Any, *, model: str, source: str, label_from: str
) -> list[str]:
    """The text of the lesson, line by line (at most 80 columns)."""
    import numpy as np

    names = pred.classes
    sizes = [bp.layers[0].A_prev.shape[0]] + [lb.units for lb in bp.layers]
    L = len(bp.layers)
    hidden = bp.layers[0].activation if L > 1 else None
    out = bp.layers[-1]
    label = int(bp.y[0])
    read = int(bp.prediction[0])
    lines: list[str] = []
    add = lines.append

    cost_name = "cross-entropy" if bp.cost == "cross_entropy" else "mean squared error"
    smoothing = f" with label smoothing ε = {bp.label_smoothing:g}" if bp.label_smoothing else ""
    add(f"model  {model}")
    add(
        f"       {'-'.join(map(str, sizes))}"
        + (f", {hidden} hidden layers" if hidden else "")
        + f", {out.activation} output, {bp.dtype}"
    )
    add(f"       cost: {cost_name}{smoothing}")
    add(f"image  {source}")
    add("")

    # -- forward
    from digitnet.explain import _probabilities

    P = _probabilities(bp.A)[:, 0]
    add("1. Forward pass (seeds 000-002): A⁰ = X, Zˡ = Wˡ·Aˡ⁻¹ + bˡ, Aˡ = g(Zˡ)")
    X = bp.X[:, 0]
    items = [f"W{sup(lb.layer)} {lb.W_shape[0]} x {lb.W_shape[1]}" for lb in bp.layers]
    items[-1] += " (units x inputs)"
    line = "   shapes:"
    for k, item in enumerate(items):
        piece = f" {item}" + ("," if k < len(items) - 1 else "")
        if len(line) + len(piece) > 80:
            add(line)
            line = " " * 10
        line += piece
    add(line)
    add(eq("A⁰ = X", bp.X, f"{np.count_nonzero(X)} of {X.size} pixels inked, in [0, 1]"))
    for lb in bp.layers:
        s, p = sup(lb.layer), sup(lb.layer - 1)
        add(eq(f"Z{s} = W{s}·A{p} + b{s}", lb.Z, summary(lb.Z)))
        if lb is out:
            detail = f"reads {names[read]} ({percent(P[read])})"
        elif lb.activation in ("relu", "leaky_relu"):
            detail = f"{lb.units - int(lb.off[0])} of {lb.units} units > 0"
        else:
            detail = summary(lb.A)
        add(eq(f"A{s} = {_g_name(lb.activation)}(Z{s})", lb.A, detail))
    if out.activation != "softmax":
        Lo = sup(L)
        add(f"   (a {out.activation} output: A{Lo} are ten scores; the percentages are A{Lo}")
        add("   divided by their sum)")
    add("")

    # -- label and cost
    add(f"2. The label: {names[label]} ({label_from})")
    if bp.label_smoothing:
        eps = bp.label_smoothing
        add(
            f"   Y = (1 - ε)·one-hot + ε/{bp.Y.shape[0]} = {num(bp.Y[label, 0])} for {label}, "
            f"{num(eps / bp.Y.shape[0])} elsewhere"
        )
        add(f"   (label smoothing ε = {eps:g}: the cost the model was trained with)")
    else:
        add(f"   Y = one-hot({label}): 1 for {label}, 0 elsewhere")
    Ls = sup(L)
    if bp.cost == "cross_entropy":
        add(f"   C = -Σᵢ Yᵢ log A{Ls}ᵢ = {num(bp.C)}")
    else:
        add(f"   C = 1/{bp.Y.shape[0]} Σᵢ (A{Ls}ᵢ - Yᵢ)² = {num(bp.C)}")
    add("")

    # -- backward
    add("3. Backward pass (seed 004 §5-§6), last layer first; one example, so m = 1")
    out_eq = bp.output_equation.replace("ᴸ", Ls)
    why = "softmax and cross-entropy together" if bp.fused else "the cost's gradient ⊙ g'"
    add(f"   {out_eq}   ({why})")
    dZ = out.dZ[:, 0]
    scale = float(np.abs(dZ).max())
    add(f"     digit      A{Ls}        Y        dZ{Ls}")
    for k in range(dZ.size):
        mark = " <- label" if k == label else (" <- read" if k == read else "")
        add(
            f"     {names[k]:>5} {out.A[k, 0]:8.4f} {bp.Y[k, 0]:8.4f} {snum(dZ[k], 10)}  "
            f"{bar(dZ[k], scale)}{mark}"
        )
    if out.g_prime is not None and _off_text(out):
        add(f"         {_off_text(out)}")
        peak = 0.25 if out.activation == "sigmoid" else 1.0
        if out.g_prime[label, 0] < 0.01 * peak:
            add(f"         the label's unit is among them: g' ≈ 0 there, so its dZ{Ls} is tiny")
    for lb in reversed(bp.layers):
        s, p = sup(lb.layer), sup(lb.layer - 1)
        if lb is not out:
            nxt = sup(lb.layer + 1)
            add(eq(f"dA{s} = W{nxt}ᵀ·dZ{nxt}", lb.dA, summary(lb.dA)))
            add(eq(f"dZ{s} = dA{s} ⊙ g'(Z{s})", lb.dZ, summary(lb.dZ)))
            text = _off_text(lb)
            if text:
                add(f"         {text}")
            top = np.argsort(-np.abs(lb.dZ[:, 0]), kind="stable")[:3]
            add(
                "         largest |dZ"
                + s
                + "|: "
                + ", ".join(f"unit {u} {snum(lb.dZ[u, 0])}" for u in top)
            )
        dW = lb.dW
        i, j = np.unravel_index(int(np.argmax(np.abs(dW))), dW.shape)
        where = f"largest {snum(dW[i, j])} at ({i}, {j})"
        add(eq(f"dW{s} = 1/m dZ{s}·A{p}ᵀ", dW, f"norm {num(np.linalg.norm(dW))}, {where}"))
        add(
            eq(f"db{s} = 1/m Σ dZ{s}", lb.db, f"= dZ{s} (m = 1), norm {num(np.linalg.norm(lb.db))}")
        )
    add("   dA⁰ is not computed: X is the data, nothing learns it")
    add("")

    # -- the dW¹ row
    u = gc.unit
    d1 = bp.layers[0].dZ[u, 0]
    add(f"4. Row {u} of dW¹, the first-layer unit with the largest |dZ¹| ({snum(d1)}):")
    add(f"   dW¹[{u}, :] = dZ¹[{u}]·Xᵀ: the drawing, scaled by {snum(d1)}. A step moves the")
    direction = "down" if d1 > 0 else "up"
    add(f"   weight from each inked pixel j into unit {u} {direction} by α·|dW¹[{u}, j]|")
    add("   (darker: larger |dW¹|; blank pixels' weights do not move)")
    row = bp.layers[0].dW[u]
    if row.size == 784:
        add("   +" + "-" * 56 + "+")
        for text in picture(row):
            add(f"   |{text}|")
        add("   +" + "-" * 56 + "+")
    add(f"   {summary(row)}")
    add("")

    # -- gradient check
    h = f"{gc.h:.0e}".replace("e-0", "e-")
    add(f"5. Gradient check: backpropagation against central differences (h = {h}),")
    add("   (C(θ + h) - C(θ - h)) / 2h, on a float64 copy of the model")
    add("   layer   W: entries  rel. error    b: entries  rel. error")
    for c in gc.layers:
        add(
            f"   {c.layer:>5}   {c.W.indices.size:>10}  {c.W.relative_error:10.1e}    "
            f"{c.b.indices.size:>10}  {c.b.relative_error:10.1e}"
        )
    add(
        f"   row {u} of dW¹: all {gc.row.indices.size} entries, "
        f"relative error {gc.row.relative_error:.1e}"
    )
    verdict = "agree" if gc.ok else "DISAGREE: the backward pass is wrong"
    add(
        f"   backprop and finite differences {verdict}: largest relative error "
        f"{gc.max_relative_error:.1e}"
    )
    add(f"   ({gc.evaluations} costs computed in {gc.seconds:.2f} s; below 1e-6 is right)")
    add("")

    # -- steps
    if steps is None:
        add("6. To take gradient-descent steps θ := θ - α dθ on a copy: --steps K --lr α")
        return lines
    add(f"6. Gradient descent θ := θ - α dθ (seed 004 §7), α = {steps.alpha:g}, on a copy")
    add("   (every Wˡ := Wˡ - α dWˡ, bˡ := bˡ - α dbˡ; the model file never changes)")
    add(f"   step  reads  P(read)  {'P(' + names[label] + ')':>7}          C")
    shown = _shown(len(steps.history))
    rows = [(0, steps.before)] + [(k + 1, s) for k, s in enumerate(steps.history)]
    last = -1
    for k, s in rows:
        if k not in shown:
            continue
        if last >= 0 and k != last + 1:
            add("     ...")
        last = k
        r = int(s.prediction[0])
        add(
            f"   {k:>4}  {names[r]:>5}  {percent(s.probabilities[r, 0]):>7}  "
            f"{percent(s.probabilities[label, 0]):>7}  {cost_text(s.C, bp.dtype):>9}"
        )
    if steps.diverged:
        add(f"   stopped: a weight became NaN or infinite (α = {steps.alpha:g} is too large)")
    elif steps.until is not None:
        if steps.reached:
            plural = "" if steps.steps == 1 else "s"
            add(f"   it reads {names[label]} after {steps.steps} step{plural}")
        else:
            add(f"   it does not read {names[label]} yet after {steps.steps} steps")
    b, a = steps.before, steps.after
    add(
        f"   accuracy on 1,000 official test digits: {percent(b.accuracy)} before, "
        f"{percent(a.accuracy)} after"
    )
    add("   (every 10th digit of the official MNIST test set: one digit's steps can cost")
    add("   accuracy on the others)")
    return lines


def cost_text(C: float, dtype: str) -> str:
    """The cost; a cost that rounds to exactly 0 in float32 says so rather than claim 0."""
    return "<1e-7" if C == 0 and dtype == "float32" else num(C)


def _shown(n: int) -> set[int]:
    """Which of the rows 0..n to print: all up to 20 steps, else the first 10 and the last 5."""
    if n <= 20:
        return set(range(n + 1))
    return set(range(11)) | set(range(n - 4, n + 1))


# -- JSON -----------------------------------------------------------------------------------------
def _array(a: Any) -> Any:
    """A whole array as nested lists (non-finite numbers as null), or a summary when large."""
    import numpy as np

    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.size <= JSON_FULL:
        return _finite(a.tolist())
    flat = np.abs(a)
    where = np.unravel_index(int(np.argmax(flat)), a.shape)
    return {
        "shape": list(a.shape),
        "norm": _finite(float(np.linalg.norm(a))),
        "min": _finite(float(a.min())),
        "max": _finite(float(a.max())),
        "argmax_abs": [int(w) for w in where],
        "row_norms": _finite(np.linalg.norm(a, axis=1).tolist()),
        "note": "summarised; recompute it from the whole dZ and A_prev: dW = 1/m dZ·A_prevᵀ",
    }


def _finite(v: Any) -> Any:
    import math

    if isinstance(v, list):
        return [_finite(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _column(a: Any) -> Any:
    """A ``(n, 1)`` array as a flat list (one example)."""
    return None if a is None else _array(a[:, 0]) if a.shape[1] == 1 else _array(a)


def _snapshot(s: Any) -> dict[str, Any]:
    out = {
        "prediction": int(s.prediction[0]),
        "probabilities": _finite([float(p) for p in s.probabilities[:, 0]]),
        "C": _finite(float(s.C)),
    }
    if s.accuracy is not None:
        out["accuracy"] = s.accuracy
        out["sample_cost"] = _finite(s.sample_cost)
    return out


def as_json(
    pred: Any, bp: Any, gc: Any, steps: Any, *, model: str, source: str, label_from: str
) -> dict[str, Any]:
    from digitnet.explain import SAMPLE_STRIDE, _probabilities

    P = _probabilities(bp.A)[:, 0]
    doc: dict[str, Any] = {
        "model": model,
        "image": source,
        "architecture": [bp.layers[0].A_prev.shape[0]] + [lb.units for lb in bp.layers],
        "dtype": bp.dtype,
        "cost": bp.cost,
        "label_smoothing": bp.label_smoothing,
        "label": int(bp.y[0]),
        "label_from": label_from,
        "prediction": int(bp.prediction[0]),
        "probabilities": [float(p) for p in P],
        "m": bp.m,
        "X": _column(bp.X),
        "Y": _column(bp.Y),
        "C": _finite(bp.C),
        "output_equation": bp.output_equation,
        "layers": [
            {
                "l": lb.layer,
                "activation": lb.activation,
                "W_shape": list(lb.W_shape),
                "units": lb.units,
                "off": int(lb.off[0]),
                "saturated": int(lb.saturated[0]),
                "Z": _column(lb.Z),
                "A": _column(lb.A),
                "g_prime": _column(lb.g_prime),
                "dA": _column(lb.dA),
                "dZ": _column(lb.dZ),
                "dW": _array(lb.dW),
                "db": _column(lb.db),
                "dA_prev": _column(lb.dA_prev),
            }
            for lb in bp.layers
        ],
        "dW1_row": {"unit": gc.unit, "values": _array(bp.layers[0].dW[gc.unit])},
        "gradient_check": {
            "h": gc.h,
            "dtype": "float64",
            "max_relative_error": gc.max_relative_error,
            "ok": gc.ok,
            "evaluations": gc.evaluations,
            "seconds": gc.seconds,
            "layers": [
                {
                    "l": c.layer,
                    "W": {"entries": int(c.W.indices.size), "relative_error": c.W.relative_error},
                    "b": {"entries": int(c.b.indices.size), "relative_error": c.b.relative_error},
                }
                for c in gc.layers
            ],
            "row": {
                "unit": gc.unit,
                "entries": int(gc.row.indices.size),
                "relative_error": gc.row.relative_error,
            },
        },
    }
    if steps is not None:
        doc["steps"] = {
            "alpha": steps.alpha,
            "taken": steps.steps,
            "until": steps.until,
            "reached": steps.reached,
            "diverged": steps.diverged,
            "accuracy_sample": f"every {SAMPLE_STRIDE}th official MNIST test digit (1,000)",
            "before": _snapshot(steps.before),
            "after": _snapshot(steps.after),
            "history": [_snapshot(s) for s in steps.history],
        }
    return doc


# -- the command ----------------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    from digitnet import explain
    from digitnet.imaging import to_column

    pred = _load_model(args)
    image, source = _load_image(args.image)
    X = to_column(image)
    read = pred.answers(X)[0]["prediction"]
    label = read if args.label is None else args.label
    label_from = (
        "chosen with --label"
        if args.label is not None
        else "the digit the model reads; --label N to choose another"
    )
    bp = explain.backward_pass(pred.net, X, label)
    gc = explain.gradient_check(pred.net, X, label)
    steps = None
    if args.steps or args.until:
        steps = explain.take_steps(
            pred.net,
            X,
            label,
            args.lr,
            steps=args.steps or None,
            until=label if args.until else None,
        )
    model = str(model_path(args.model))
    if args.json:
        doc = as_json(pred, bp, gc, steps, model=model, source=source, label_from=label_from)
        print(json.dumps(doc, ensure_ascii=False, allow_nan=False))
    else:
        for line in lesson(pred, bp, gc, steps, model=model, source=source, label_from=label_from):
            print(line)
    sys.stdout.flush()
    return 0
