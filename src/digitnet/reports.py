"""How well a network does, in pictures (the numbers behind them are :mod:`digitnet.metrics`).

Pictures, each a PNG written atomically (rendered into memory, then written through a temporary
file in the same folder and a rename, so a reader never sees half a picture):

- :func:`plot_learning_curves` -- loss and accuracy per epoch, training and validation;
- :func:`plot_confusion_matrix` -- the matrix with its counts in the cells;
- :func:`plot_weights` -- the first layer's rows as 28x28 tiles (what each hidden unit looks for);
- :func:`plot_mistakes` -- a grid of misread digits titled ``true 4 → predicted 9 (97 %)``;
- :func:`plot_weight_histograms` -- the distribution of each parameter array.

matplotlib is imported only inside the plotting functions, so ``import digitnet.reports`` stays
quick. The figures are drawn with matplotlib's object-oriented API on the Agg canvas
(``matplotlib.figure.Figure`` with ``FigureCanvasAgg``), never through ``pyplot``: no display is
needed, no global backend is switched (``matplotlib.use`` would close the figures of a notebook
that calls these functions), and nothing stays registered with pyplot after saving, as
matplotlib recommends for programs that write figures in the background.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.errors import DataError, DigitnetError, ShapeError
from digitnet.metrics import accuracy, labels_array, square_counts

#: resolution of every picture, in dots per inch
DPI = 100

_Path = str | os.PathLike[str]


# -- drawing helpers ------------------------------------------------------------------------
def matplotlib_colormap(name: str) -> Any:
    """A registered colormap by name (without pyplot)."""
    import matplotlib

    return matplotlib.colormaps[name]


def _figure(width: float, height: float) -> Any:
    """A new figure on an Agg canvas, outside pyplot (nothing global to switch or close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: _Path) -> None:
    """Render ``fig`` to PNG bytes in memory, then write them atomically to ``path``."""
    from digitnet.files import write_atomic

    path = Path(path)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    finally:
        fig.clear()
    try:
        write_atomic(path, buf.getvalue())
    except OSError as exc:
        raise DigitnetError(
            f"{path}: cannot write the picture ({exc.strerror or exc}).",
            "check that the folder exists and is writable",
        ) from None


@functools.lru_cache(maxsize=1)
def _font_charmap() -> frozenset[int]:
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(findfont(FontProperties())).get_charmap())
    except Exception:  # an unreadable font file: assume ASCII only
        return frozenset(range(32, 127))


def _display_labels(classes: Sequence[str] | None, n: int) -> list[str]:
    """The class names to draw; a name the font cannot draw (KMNIST's kana) becomes its index."""
    if classes is None:
        return [str(i) for i in range(n)]
    if len(classes) != n:
        raise ShapeError(f"{len(classes)} class names given for {n} classes.")
    charmap = _font_charmap()
    return [
        str(c) if all(ord(ch) in charmap for ch in str(c)) else str(i)
        for i, c in enumerate(classes)
    ]


def _is_digits(labels: Sequence[str]) -> bool:
    return list(labels) == [str(i) for i in range(len(labels))]


def _percent(p: float) -> str:
    """``0.97`` -> ``"97 %"``; near-certain values keep a decimal so 0.9996 is not "100 %"."""
    value = 100.0 * float(p)
    if 99.5 <= value < 100.0:
        return f"{min(value, 99.9):.1f} %"
    if 0.0 < value < 0.5:
        return f"{max(value, 0.1):.1f} %"
    return f"{value:.0f} %"


def _round_count(x: float) -> int:
    """A count rounded to one significant figure: 1118 -> 1000, 311 -> 300, 0.4 -> 0."""
    if x < 1:
        return 0
    step = 10 ** math.floor(math.log10(x))
    return int(max(1, round(x / step)) * step)


def _grid(k: int, max_cols: int) -> tuple[int, int]:
    cols = max(1, min(k, max_cols, math.ceil(math.sqrt(k))))
    return math.ceil(k / cols), cols


# -- pictures -------------------------------------------------------------------------------
def training_note(config: Any) -> str | None:
    """What the training curves measure, when it is not the plain training images.

    The trainer scores each batch as it trains on it: after augmentation distorted it and with
    dropout switched on, and with the label-smoothed cost; validation sees clean images through
    the whole network. A learner who is not told sees training accuracy below validation
    accuracy, and a loss that never falls below ~0.5, and thinks something is broken.
    ``config``: a TrainConfig or its dict (metrics.json's ``config``). None when nothing to say.
    """
    if config is None:
        return None
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    how = []
    if get("augment", "none") not in (None, "none"):
        how.append(f"distorted ({get('augment')} augmentation)")
    if get("dropout", 0.0) or get("input_dropout", 0.0):
        rates = [f"dropout {get('dropout'):g}"] if get("dropout", 0.0) else []
        rates += [f"input dropout {get('input_dropout'):g}"] if get("input_dropout", 0.0) else []
        how.append(f"with {' and '.join(rates)}")
    smoothing = get("label_smoothing", 0.0)
    if not how and not smoothing:
        return None
    parts = []
    if how:
        parts.append(
            "Training loss and accuracy are measured on each batch as it was trained: "
            + ", ".join(how)
            + "; validation on clean images, without dropout, so training accuracy below "
            "validation accuracy is expected."
        )
    if smoothing:
        parts.append(
            f"The loss includes label smoothing {smoothing:g}: it cannot fall to 0, even for a "
            "network that reads every digit right."
        )
    return " ".join(parts)


def plot_learning_curves(
    history: list[dict[str, Any]], path: _Path, *, note: str | None = None
) -> None:
    """Loss (left) and accuracy (right) per epoch, training and validation, as a PNG.

    ``history``: one dict per epoch with ``epoch``, ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy`` (the validation values may be ``None``: then only training is drawn), as
    ``fit`` returns it and metrics.json stores it. ``note``, when given, is printed under the
    plots: what the curves measure (:func:`training_note`).
    """
    if not history:
        raise ShapeError("The history is empty: there is no epoch to draw.")
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    marker = "o" if len(history) <= 30 else None
    fig = _figure(11, 4.3)
    ax_loss, ax_acc = fig.subplots(1, 2)
    panels = (
        (ax_loss, "loss", "val_loss", "Loss (the cost C)", "loss", 1.0, "{:.3f}"),
        (ax_acc, "accuracy", "val_accuracy", "Accuracy", "accuracy (%)", 100.0, "{:.1f} %"),
    )
    for ax, key, val_key, title, ylabel, scale, fmt in panels:
        train = [scale * h[key] for h in history]
        ax.plot(
            epochs,
            train,
            marker=marker,
            color="tab:blue",
            label=f"training (last {fmt.format(train[-1])})",
        )
        val_pts = [(h["epoch"], scale * h[val_key]) for h in history if h.get(val_key) is not None]
        if val_pts:
            xs, ys = zip(*val_pts, strict=True)
            ax.plot(
                xs,
                ys,
                marker=marker,
                linestyle="--",
                color="tab:orange",
                label=f"validation (last {fmt.format(ys[-1])})",
            )
        ax.set_title(title, fontsize=13)
        ax.set_xlabel("epoch", fontsize=11)
        ax.set_ylabel(ylabel, fontsize=11)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=10, loc="best")
    suffix = "" if any(h.get("val_loss") is not None for h in history) else " (no validation set)"
    fig.suptitle(f"Learning curves over {len(history)} epochs{suffix}", fontsize=14)
    if note:
        import textwrap

        fig.supxlabel(textwrap.fill(note, 150), fontsize=9.5, color="0.25")
    _save(fig, path)


def plot_confusion_matrix(
    cm: np.ndarray, path: _Path, classes: Sequence[str] | None = None
) -> None:
    """The confusion matrix (row = true class, column = prediction) with counts in the cells.

    Colour follows the count on a square-root-like scale, so that the few mistakes show beside
    the large diagonal; the title gives the accuracy and the number of examples.
    """
    from matplotlib.colors import PowerNorm

    cm = square_counts(cm)
    n = cm.shape[0]
    labels = _display_labels(classes, n)
    what = "digit" if classes is None or _is_digits([str(c) for c in classes]) else "class"
    long_labels = max(len(s) for s in labels) > 3
    side = max(6.0, 0.62 * n + 1.5)
    fig = _figure(side + 1.3, side + (0.8 if long_labels else 0.0))
    ax = fig.subplots()
    vmax = max(float(cm.max()), 1.0)
    norm = PowerNorm(gamma=0.4, vmin=0.0, vmax=vmax)
    image = ax.imshow(cm, cmap="Blues", norm=norm, interpolation="nearest")
    big = n * n <= 400
    size = 10 if n <= 10 else 8
    for i in range(n):
        for j in range(n):
            count = int(cm[i, j])
            if not big:
                continue
            if count == 0:
                ax.text(j, i, "0", ha="center", va="center", fontsize=size - 1, color="0.75")
                continue
            dark = norm(count) > 0.55
            ax.text(
                j,
                i,
                f"{count}",
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else "black",
                fontweight="bold" if i == j else "normal",
            )
    ax.set_xticks(range(n), labels, fontsize=10)
    ax.set_yticks(range(n), labels, fontsize=10)
    if long_labels:
        for tick in ax.get_xticklabels():
            tick.set_rotation(40)
            tick.set_horizontalalignment("right")
            tick.set_rotation_mode("anchor")
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(f"predicted {what}", fontsize=12)
    ax.set_ylabel(f"true {what}", fontsize=12)
    total = int(cm.sum())
    ax.set_title(
        f"Confusion matrix: {100 * accuracy(cm):.2f} % of {total:,} right\n"
        f"(row = true {what}, column = predicted; the diagonal is right)",
        fontsize=12,
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    # ticks evenly spaced on the bar, at round counts
    ticks = sorted({_round_count(vmax * q ** (1 / norm.gamma)) for q in np.linspace(0, 1, 6)})
    bar.set_ticks([t for t in ticks if t <= vmax])
    bar.set_label("number of images (compressed scale: small counts show)", fontsize=10)
    _save(fig, path)


def plot_weights(
    W: np.ndarray, path: _Path, image_shape: tuple[int, int] = (28, 28), max_units: int = 64
) -> None:
    """The first layer's weights, one tile per hidden unit: row ``j`` of ``W`` as an image.

    ``W`` is ``(n_units, n_pixels)`` as a ``Dense`` layer keeps it (``layer.W``, the model file's
    ``0.weight``). The first ``max_units`` rows are drawn, on one diverging scale centred at 0
    (red: a bright pixel there raises the unit's input; blue: lowers it), clipped at the 99.5th
    percentile of ``|W|`` so that a few large weights do not wash out the rest.
    """
    W = np.asarray(W, dtype=np.float64)
    n_pixels = int(np.prod(image_shape))
    if W.ndim != 2 or W.shape[1] != n_pixels:
        hint = (
            "pass W as (n_units, n_pixels), as Dense.W keeps it; this looks transposed"
            if W.ndim == 2 and W.shape[0] == n_pixels
            else None
        )
        raise ShapeError(
            f"W must be (n_units, {n_pixels}) for {image_shape[0]}x{image_shape[1]} images; "
            f"got {W.shape}.",
            hint,
        )
    if max_units < 1:
        raise ShapeError(f"max_units must be positive; got {max_units}.")
    k = min(max_units, W.shape[0])
    shown = W[:k]
    vmax = float(np.percentile(np.abs(shown), 99.5)) or float(np.abs(shown).max()) or 1.0
    rows, cols = _grid(k, max_cols=10)
    # One mosaic image (NaN between the tiles, drawn white) in one axes: far quicker to lay out
    # and draw than an axes per unit. Each tile has a strip above it for its label.
    h, w = image_shape
    gap, label = 2, 9  # pixels between tiles, and above each tile for its label
    cell_h, cell_w = h + label + gap, w + gap
    mosaic = np.full((rows * cell_h, cols * cell_w), np.nan)
    for i in range(k):
        r, c = divmod(i, cols)
        top, left = r * cell_h + label, c * cell_w + gap // 2
        mosaic[top : top + h, left : left + w] = shown[i].reshape(image_shape)
    tile = 1.15
    fig = _figure(max(6.0, cols * tile + 1.4), rows * tile * cell_h / cell_w + 1.2)
    ax = fig.subplots()
    cmap = matplotlib_colormap("RdBu_r").with_extremes(bad="white")
    image = ax.imshow(
        mosaic, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest", aspect="equal"
    )
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    frames = []
    for i in range(k):
        r, c = divmod(i, cols)
        top, left = r * cell_h + label, c * cell_w + gap // 2
        frames.append(Rectangle((left - 0.5, top - 0.5), w, h))
        ax.text(left + w / 2, top - 1.5, f"unit {i}", ha="center", va="bottom", fontsize=8)
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor="0.7", linewidth=0.6))
    ax.set_axis_off()
    which = f"all {k}" if k == W.shape[0] else f"the first {k} of {W.shape[0]}"
    fig.suptitle(
        f"First-layer weights: {which} hidden units, each as a {h}x{w} image\n"
        "red: a bright pixel there excites the unit; blue: inhibits it",
        fontsize=11,
    )
    bar = fig.colorbar(image, ax=ax, shrink=0.6, extend="both", pad=0.02)
    bar.set_label("weight", fontsize=10)
    _save(fig, path)


def plot_mistakes(
    images: np.ndarray,
    y_true: Any,
    y_pred: Any,
    confidence: Any,
    path: _Path,
    classes: Sequence[str] | None = None,
    image_shape: tuple[int, int] = (28, 28),
) -> None:
    """Misread images in a grid, each titled ``true 4 → predicted 9 (97 %)``.

    ``images``: ``(n_pixels, k)``, one image per column (``X[:, indices]``), pixels in [0, 1];
    ``y_true``, ``y_pred``: their ``k`` labels; ``confidence``: the probability the network gave
    its prediction. Drawn as dark ink on white. With ``k = 0``, a picture that says so.
    """
    images = np.asarray(images, dtype=np.float64)
    t = labels_array(y_true, "y_true")
    p = labels_array(y_pred, "y_pred")
    conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
    n_pixels = int(np.prod(image_shape))
    if images.ndim != 2 or images.shape[0] != n_pixels:
        raise ShapeError(
            f"images must be ({n_pixels}, k), one image per column; got {images.shape}.",
            "for images as rows (k, 784), pass images.T",
        )
    k = images.shape[1]
    if not t.size == p.size == conf.size == k:
        raise ShapeError(
            f"{k} images but {t.size} true labels, {p.size} predictions and {conf.size} "
            "confidences; they must agree."
        )
    n_classes = max(10, int(max(t.max(initial=0), p.max(initial=0))) + 1)
    if classes is not None:
        n_classes = len(classes)
    labels = _display_labels(classes, n_classes)
    if k == 0:
        fig = _figure(7, 2.5)
        fig.text(
            0.5,
            0.5,
            "No mistakes: every image was classified correctly.",
            ha="center",
            va="center",
            fontsize=13,
        )
        _save(fig, path)
        return
    if t.max() >= n_classes or p.max() >= n_classes:
        raise DataError(f"labels go beyond the {n_classes} class names given.")
    long_labels = max(len(labels[i]) for i in (*t, *p)) > 2
    rows, cols = _grid(k, max_cols=5 if long_labels else 6)
    width = 2.6 if long_labels else 2.1
    fig = _figure(max(7.0, cols * width), rows * (width + 0.35) + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= k:
            ax.set_axis_off()
            continue
        ax.imshow(
            images[:, i].reshape(image_shape),
            cmap="gray_r",
            vmin=0.0,
            vmax=1.0,
            interpolation="nearest",
        )
        true_label, pred_label = labels[t[i]], labels[p[i]]
        if long_labels:
            title = f"true {true_label}\n→ predicted {pred_label} ({_percent(conf[i])})"
        else:
            title = f"true {true_label} → predicted {pred_label}\n({_percent(conf[i])} sure)"
        ax.set_title(title, fontsize=9.5, pad=3)
        for spine in ax.spines.values():
            spine.set_color("firebrick")
    fig.suptitle(
        f"{k} misread image{'s' if k != 1 else ''}, surest first\n"
        "above each: its true label → the network's answer (and its confidence)",
        fontsize=12,
    )
    _save(fig, path)


def _named_arrays(net_or_params: Any) -> list[tuple[str, np.ndarray]]:
    if hasattr(net_or_params, "parameters") and callable(net_or_params.parameters):
        items = net_or_params.parameters()  # a Network: (name, θ, dθ)
    elif isinstance(net_or_params, dict):
        items = list(net_or_params.items())
    else:
        items = list(net_or_params)
    out = []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) < 2:
            raise ShapeError(f"expected (name, array) pairs; got {item!r:.60}.")
        out.append((str(item[0]), np.asarray(item[1], dtype=np.float64)))
    if not out:
        raise ShapeError("There are no parameters to draw.")
    return out


def plot_weight_histograms(net_or_params: Any, path: _Path) -> None:
    """A histogram of each parameter array: ``W1, b1, W2, b2, ...``, two panels per row.

    ``net_or_params``: a :class:`~digitnet.network.Network` (its ``parameters()``), or a list of
    ``(name, array)`` pairs (or a dict). Each panel says the array's shape, mean and standard
    deviation; weights are blue, biases (names starting with ``b``) orange.
    """
    from matplotlib.ticker import MaxNLocator

    params = _named_arrays(net_or_params)
    rows, cols = math.ceil(len(params) / 2), min(2, len(params))
    fig = _figure(5.2 * cols + 0.4, 2.7 * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, arr) in zip(axes, params, strict=False):
        values = arr.ravel()
        bins = int(min(60, max(10, math.sqrt(values.size)))) if values.size else 10
        color = "tab:orange" if name.lower().startswith("b") else "tab:blue"
        counts, _, _ = ax.hist(values, bins=bins, color=color, edgecolor="white", linewidth=0.3)
        ax.set_ylim(0, 1.45 * max(float(np.max(counts)) if len(counts) else 1.0, 1.0))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # headroom for the numbers
        shape = "×".join(str(s) for s in arr.shape) or "scalar"
        ax.set_title(f"{name}: {shape} = {values.size:,} values", fontsize=11)
        ax.set_xlabel("value", fontsize=10)
        ax.set_ylabel("count", fontsize=10)
        ax.grid(True, alpha=0.3)
        if values.size:
            stats = (
                f"mean {values.mean():+.3g}\nstd {values.std():.3g}\n"
                f"min {values.min():+.3g}\nmax {values.max():+.3g}"
            )
            ax.text(
                0.98,
                0.95,
                stats,
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8.5,
                family="monospace",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85, "ec": "0.8"},
            )
    for ax in axes[len(params) :]:
        ax.set_axis_off()
    fig.suptitle("Parameters by layer (W: weights, b: biases)", fontsize=13)
    _save(fig, path)


__all__ = [
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_mistakes",
    "plot_weight_histograms",
    "plot_weights",
    "training_note",
]
