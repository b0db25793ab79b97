"""Reading digits with a trained model: what ``digitnet predict`` and ``digitnet serve`` share.

One implementation of the answer, so that the web page's ``POST /api/predict`` gives, for the
same file, exactly what ``digitnet predict --json`` prints: the image goes through
:func:`digitnet.imaging.preprocess` (the MNIST authors' recipe), its ``(784, 1)`` column
``A⁰ = X`` through the network, and the output column ``Aᴸ`` becomes ten probabilities rounded to
six significant digits, the predicted digit and the top three.

:meth:`Predictor.trace` also keeps every layer's output on the way, in the seeds' names: dense
layer ``l`` gives ``Zˡ = Wˡ·Aˡ⁻¹ + bˡ``, the activation after it ``Aˡ = g(Zˡ)`` (seed 004's
layer-by-layer forward).

Inference keeps no state in the network (see :meth:`digitnet.network.Network.predict_proba`),
so one ``Predictor`` answers from several threads at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from digitnet.errors import ModelFileError
from digitnet.layers import Dense, Dropout
from digitnet.metrics import FLAGGED, confident_threshold, normalised
from digitnet.network import seed_name

N_INPUTS = 784  # 28x28 pixels
N_OUTPUTS = 10  # one per digit
TOP = 3
CALIBRATION = 500
"""How many official test digits (the first) calibrate the threshold of a model file that does
not carry its own (one saved by the Python API, or taught in the backward view): about 25 ms of
CPU for the default preset's network, once per Predictor. A 0.6 % quantile of 500 digits is the
3rd or 4th lowest, so it wanders (0.34 to 0.50 for one model, from one 500 to another):
``digitnet train`` stores in the model file the threshold of all the test digits instead."""


def json_float(p: float) -> float:
    """A probability as JSON shows it: six significant digits."""
    return float(f"{p:.6g}")


def class_names(doc: dict[str, Any], n: int) -> list[str]:
    """The names of the outputs: from the model's document if it records them, else the names
    of the dataset it was trained on if digitnet knows it, else the digits."""
    dataset = doc.get("dataset")
    dataset = dataset if isinstance(dataset, dict) else {}
    for names in (dataset.get("classes"), doc.get("classes")):
        if isinstance(names, list) and len(names) == n and all(isinstance(s, str) for s in names):
            from digitnet.text import printable

            return [printable(s) for s in names]  # (control characters escaped)
    from digitnet.data.sources import DOWNLOADABLE

    known = DOWNLOADABLE.get(str(dataset.get("name", "")))
    if known is not None and len(known.classes) == n:
        return list(known.classes)
    return [str(d) for d in range(n)]


class Predictor:
    """A model file loaded for reading 28x28 digits.

    Parameters
    ----------
    path : the ``model.safetensors`` file (see :mod:`digitnet.modelfile`).
    data : the file's bytes, already read (then ``path`` only names it in messages).

    Raises :class:`~digitnet.errors.ModelFileError` if the file is not a model, or if the
    network does not map 784 pixels to 10 outputs.
    """

    def __init__(self, path: str | os.PathLike[str], data: bytes | None = None) -> None:
        from digitnet.modelfile import from_bytes, load_model

        self.path = Path(path)
        if data is None:
            self.net, self.doc = load_model(self.path)
        else:
            self.net, self.doc = from_bytes(data, str(self.path))
        net = self.net
        if net.n_inputs != N_INPUTS or net.n_outputs != N_OUTPUTS:
            raise ModelFileError(
                f"{self.path}: the network maps {net.n_inputs} inputs to {net.n_outputs} "
                f"outputs; reading digits needs {N_INPUTS} inputs (a 28x28 image) and "
                f"{N_OUTPUTS} outputs (one per digit).",
                "train one with 'digitnet train --layers 784-...-10 --out DIR'",
            )
        self.classes = class_names(self.doc, net.n_outputs)
        self._threshold: float | None = None

    def confident_threshold(self) -> float:
        """The probability of the best digit under which this model's answer is "not sure":
        the :data:`FLAGGED` quantile of its best probabilities on the official test digits, as
        ``digitnet train`` stored it in the model file (``metrics.confident_threshold``), else
        on the first :data:`CALIBRATION` of them (computed once)."""
        if self._threshold is None:
            metrics = self.doc.get("metrics")
            stored = metrics.get("confident_threshold") if isinstance(metrics, dict) else None
            if isinstance(stored, float) and 0.0 < stored <= 1.0:
                self._threshold = stored
            else:
                self._threshold = confident_threshold(self.net.predict_proba(_calibration_digits()))
        return self._threshold

    # -- the answer ------------------------------------------------------------------------
    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """``(10, m)`` float64 columns that sum to 1, for the columns of ``X`` (``(784, m)``).

        A softmax output already does; a sigmoid output (a model trained with the mse cost)
        gives ten independent scores, which are divided by their sum (they are then scores, not
        calibrated probabilities).
        """
        return normalised(self.net.predict_proba(X))

    def answers(self, X: np.ndarray) -> list[dict[str, Any]]:
        """For each column of ``X``: ``{"prediction", "probabilities", "top3"}``."""
        P = self.probabilities(X)
        return [_answer(P[:, j]) for j in range(P.shape[1])]

    def read(
        self,
        source: Any,
        *,
        layers: list[dict[str, Any]] | None = None,
        max_bytes: int | None = None,
    ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """An image file (or its bytes) read: the answer that ``digitnet predict --json`` prints
        and ``POST /api/predict`` sends (less ``image``), and the 28x28 image of each digit.

        The answer: ``number`` (the digits read left to right, a string), ``digits`` (for each,
        its ``box`` ``[x, y, width, height]`` in the image's pixels, ``prediction``,
        ``probabilities``, ``top3``, ``confident`` and ``reason``), ``confident`` (every digit
        is) and ``reason`` (why not, in one line; ``None`` when confident). For a single digit,
        ``prediction``, ``probabilities`` and ``top3`` are that digit's; for several they are
        ``None``: the number is the answer. Raises :class:`~digitnet.errors.ImageError`.

        Each digit goes through :meth:`trace`, one column at a time (a batch of several columns
        can differ from one column in the last bits of float32); given a list as ``layers``,
        the first digit's layers are appended to it, for the page. ``max_bytes``: the memory
        decoding may take (default: the command line's budget; the server passes its own).
        """
        from digitnet.imaging import MAX_DECODED_BYTES, read

        reading = read(source, max_bytes=MAX_DECODED_BYTES if max_bytes is None else max_bytes)
        images = [d.image for d in reading.digits]
        digits = []
        for k, d in enumerate(reading.digits):
            answer, traced = self.trace(d.image)
            if k == 0 and layers is not None:
                layers.extend(traced)
            entry = {"box": list(d.box), **answer}
            entry.update(_confidence(entry, d.doubt or reading.doubt, self.confident_threshold()))
            digits.append(entry)
        return self.summary(digits), images

    def summary(self, digits: list[dict[str, Any]]) -> dict[str, Any]:
        """The answer for a whole image from its digits' entries (see :meth:`read`)."""
        single = digits[0] if len(digits) == 1 else None
        doubtful = [(i, d) for i, d in enumerate(digits) if not d["confident"]]
        reason = None
        if doubtful:
            i, d = doubtful[0]
            reason = d["reason"] if single else f"digit {i + 1} of {len(digits)}: {d['reason']}"
        return {
            "prediction": single["prediction"] if single else None,
            "probabilities": single["probabilities"] if single else None,
            "top3": single["top3"] if single else None,
            "confident": not doubtful,
            "reason": reason,
            "number": "".join(str(d["prediction"]) for d in digits),
            "digits": digits,
        }

    def trace(self, image: np.ndarray) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One ``(28, 28)`` image through the network, layer by layer.

        Returns the answer (as :meth:`answers`) and the layers' outputs: ``A0`` (the input
        ``X``), then ``Z1``, ``A1``, ... ``AL``, each ``{"name", "kind", "shape", "values"}``,
        the values a float64 array rounded to 6 decimals (orjson writes such arrays itself, with
        ``OPT_SERIALIZE_NUMPY``, a third quicker than from lists).
        The answer comes from the same arithmetic as :meth:`answers` (``predict_proba`` runs the
        same layers on the same column), so both give the same digits for the same image.
        """
        from digitnet.imaging import to_column

        A = self.net.check_input(to_column(image))
        layers = [_record("A0", "input", A)]
        l_index = 0
        with np.errstate(over="ignore", under="ignore"):
            for layer in self._layers():
                A = layer.forward(A)
                kind = str(layer.config()["kind"])
                if isinstance(layer, Dense):
                    l_index += 1
                    layers.append(_record(seed_name("Z", l_index), kind, A))
                else:
                    layers.append(_record(seed_name("A", l_index), kind, A))
        return _answer(normalised(A)[:, 0]), layers

    def _layers(self) -> list[Any]:
        """The layers that act at inference (dropout passes its input through unchanged)."""
        return [layer for layer in self.net.layers if not isinstance(layer, Dropout)]

    # -- what the model is ------------------------------------------------------------------
    def layer_table(self) -> list[dict[str, Any]]:
        """Each layer with its output's name and shape, and for a dense layer ``Wˡ`` and ``bˡ``."""
        table: list[dict[str, Any]] = []
        l_index, n = 0, self.net.n_inputs
        for i, layer in enumerate(self._layers()):
            n = layer.output_size(n)
            row: dict[str, Any] = {"index": i, "kind": str(layer.config()["kind"])}
            if isinstance(layer, Dense):
                l_index += 1
                row.update(
                    name=seed_name("Z", l_index),
                    shape=[n],
                    W=seed_name("W", l_index),
                    W_shape=list(layer.W.shape),
                    b=seed_name("b", l_index),
                    b_shape=list(layer.b.shape),
                )
            else:
                row.update(name=seed_name("A", l_index), shape=[n])
            table.append(row)
        return table

    def incoming(self, l_index: int, unit: int) -> tuple[np.ndarray, float]:
        """Row ``unit`` of ``Wˡ`` (the unit's incoming weights) and ``bˡ[unit]``; ``l`` from 1.

        Raises ``IndexError`` for a layer or unit the network does not have.
        """
        dense = self.net.dense_layers
        if not 1 <= l_index <= len(dense):
            raise IndexError(f"layer {l_index}: the network has dense layers 1 to {len(dense)}")
        layer = dense[l_index - 1]
        if not 0 <= unit < layer.W.shape[0]:
            raise IndexError(f"unit {unit}: layer {l_index} has units 0 to {layer.W.shape[0] - 1}")
        return layer.W[unit], float(layer.b[unit, 0])


def _answer(column: np.ndarray) -> dict[str, Any]:
    order = np.argsort(-column, kind="stable")[:TOP]
    top = [[int(k), json_float(column[k])] for k in order]
    return {
        "prediction": top[0][0],
        "probabilities": [json_float(p) for p in column],
        "top3": top,
    }


def _calibration_digits() -> np.ndarray:
    """The first :data:`CALIBRATION` official test digits as ``(784, m)`` float32 columns, read
    from the embedded test set (only as much of the file as they take is decompressed)."""
    import gzip
    from importlib import resources

    # (digitnet.data.datasets would import the downloader's certificates: 0.1 s of start-up)
    embedded = resources.files("digitnet.data") / "embedded" / "t10k-images-idx3-ubyte.gz"
    with embedded.open("rb") as raw, gzip.open(raw, "rb") as fh:
        header = fh.read(16)
        count = int.from_bytes(header[4:8], "big")
        m = min(CALIBRATION, count)
        pixels = np.frombuffer(fh.read(m * N_INPUTS), dtype=np.uint8)
    return (pixels.reshape(m, N_INPUTS).T / np.float32(255.0)).astype(np.float32)


def _confidence(entry: dict[str, Any], doubt: str | None, threshold: float) -> dict[str, Any]:
    """Whether a digit's answer is confident, and if not, why: a doubt about its shape (see
    :func:`digitnet.imaging.read_digits`), else a best probability under ``threshold`` (see
    :meth:`Predictor.confident_threshold`)."""
    best, p = entry["top3"][0]
    if doubt is None and p < threshold:
        doubt = (
            f"the likeliest digit, {best}, has only {100 * p:.0f} %, less than this model "
            f"gives {100 - 100 * FLAGGED:g} % of clear test digits ({100 * threshold:.0f} %)"
        )
    return {"confident": doubt is None, "reason": doubt}


def _record(name: str, kind: str, A: np.ndarray) -> dict[str, Any]:
    values = np.asarray(A[:, 0], dtype=np.float64)
    return {
        "name": name,
        "kind": kind,
        "shape": [int(values.size)],
        # to 6 decimals, in one vectorised step: thousands of values per answer, for drawing
        "values": np.round(values, 6),
    }
