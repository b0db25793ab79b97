"""``digitnet inspect``: what a model file holds, layer by layer, and how it was made.

Prints a table of the layers (kind, shape, parameters, options), the total parameter count, the
cost and input, and what the file records of its training: the dataset, the metrics, the
config, the seed and the digitnet version. Draws ``weights.png`` (the first layer's weights as
28x28 tiles: what each hidden unit looks for) and ``histograms.png`` (each parameter array's
values).

Only the standard library is imported at the top: NumPy, the model file reader and matplotlib
load in the handler.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from digitnet.commands import Formatter

INSPECT_EXAMPLES = """\
examples:
  digitnet inspect runs/best                    # a run folder holding model.safetensors
  digitnet inspect model.safetensors --out pictures

writes, into --out (default: the model's folder):
  weights.png      the first layer's weights, one 28x28 tile per hidden unit (at most 64)
  histograms.png   the values of each parameter array, W1, b1, W2, b2, ...
"""

#: what each layer kind does, for the table's last column
_DETAILS = {
    "relu": "max(0, z)",
    "sigmoid": "1 / (1 + e^-z)",
    "tanh": "tanh z",
    "arctan": "arctan z",
    "identity": "z (no activation)",
}


def register(sub: argparse._SubParsersAction) -> None:
    inspect = sub.add_parser(
        "inspect",
        help="show a model file's layers, parameters and training record",
        description="Show what a model file holds: a table of its layers (kind, shape, "
        "parameters, options), the total number of parameters, the cost and the input it "
        "expects, and what it records of its training (dataset, metrics, config, seed, digitnet "
        "version). Draws the first layer's weights and a histogram of each parameter array as "
        "PNG pictures.",
        epilog=INSPECT_EXAMPLES,
        formatter_class=Formatter,
    )
    inspect.add_argument(
        "model",
        metavar="MODEL",
        help="a model file, or a run folder holding model.safetensors ('digitnet train --out DIR')",
    )
    inspect.add_argument(
        "--out",
        metavar="DIR",
        help="the folder for weights.png and histograms.png (default: the model's folder)",
    )
    inspect.set_defaults(handler=cmd_inspect)


def layer_rows(architecture: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per layer: index, kind, torch index, shape, parameter count, details."""
    from digitnet.network import seed_name

    rows = []
    n = None
    torch_index, l_index = 0, 0
    for i, layer in enumerate(architecture):
        kind = layer["kind"]
        options = {k: v for k, v in layer.items() if k != "kind"}
        params = 0
        torch = "-"
        if kind != "dropout":
            torch = str(torch_index)
            torch_index += 1
        if kind == "dense":
            l_index += 1
            n_in, n_out = layer["n_in"], layer["n_out"]
            shape = f"{n_in} → {n_out}"
            params = n_in * n_out + n_out
            W, b = seed_name("W", l_index), seed_name("b", l_index)
            details = f"{W} [{n_out}, {n_in}], {b} [{n_out}]"
            n = n_out
        elif kind == "dropout":
            shape = str(n) if n is not None else "all"
            details = f"p = {options.get('p')}: in training only, left out at inference"
        elif kind == "softmax":
            shape = str(n)
            details = f"probabilities over the {n} outputs"
        elif kind == "leaky_relu":
            shape = str(n)
            details = f"max(z, {options.get('slope')}·z)"
        else:
            shape = str(n) if n is not None else "all"
            details = _DETAILS.get(kind, ", ".join(f"{k} {v}" for k, v in options.items()))
        if n is None:  # a layer before the first dense one acts on the pixels
            shape = "input"
        rows.append(
            {
                "index": i,
                "kind": kind,
                "torch": torch,
                "shape": shape,
                "parameters": params,
                "details": details,
            }
        )
    return rows


def _layer_table(rows: list[dict[str, Any]]) -> list[str]:
    kind_w = max(len("layer"), *(len(r["kind"]) for r in rows))
    shape_w = max(len("shape"), *(len(r["shape"]) for r in rows))
    param_w = max(len("parameters"), *(len(f"{r['parameters']:,}") for r in rows))
    lines = [
        f"{'#':>3}  {'layer':<{kind_w}}  {'torch':>5}  {'shape':<{shape_w}}  "
        f"{'parameters':>{param_w}}  details"
    ]
    for r in rows:
        lines.append(
            f"{r['index']:>3}  {r['kind']:<{kind_w}}  {r['torch']:>5}  {r['shape']:<{shape_w}}  "
            f"{r['parameters']:>{param_w},}  {r['details']}"
        )
    return lines


def _cost(doc: dict[str, Any]) -> str:
    cost = doc["cost"]
    if cost["kind"] == "cross_entropy":
        smoothing = cost.get("label_smoothing") or 0
        return "cross-entropy" + (f", label smoothing {smoothing}" if smoothing else "")
    if cost["kind"] == "mse":
        return "mean squared error"
    return str(cost["kind"])


def _value(key: str, value: Any) -> str:
    """A metric or setting, readably: accuracies as percentages, counts with separators."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        if key.endswith("accuracy"):
            return f"{100 * value:.2f}%"
        if key == "seconds":
            return f"{value:.1f} s"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}" if key.startswith("n_") else str(value)
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


#: the metrics shown first, in this order; the others follow as they come
_METRIC_ORDER = (
    "test_accuracy",
    "test_loss",
    "train_accuracy",
    "train_loss",
    "val_accuracy",
    "n_train",
    "n_validation",
    "n_test",
    "n_parameters",
    "seconds",
)


def _wrapped(label: str, items: list[str], width: int = 100) -> list[str]:
    """``label`` then ``items`` joined by commas, wrapped between items, aligned under the first."""
    lines: list[str] = []
    line = label
    for n, item in enumerate(items or ["(none)"]):
        piece = item + ("," if n < len(items) - 1 else "")
        if line.strip() and len(line) + 1 + len(piece) > width and line != label:
            lines.append(line)
            line = " " * len(label)
        line += " " + piece
    lines.append(line)
    return lines


def _record(doc: dict[str, Any]) -> list[str]:
    """The training record of the document: dataset, metrics, config, seed, version."""
    lines = []
    dataset = doc.get("dataset")
    if isinstance(dataset, dict):
        name = dataset.get("name", "?")
        extra = [f"{k}={_value(k, v)}" for k, v in dataset.items() if k != "name"]
        lines += _wrapped("dataset:", [f"{name}", *extra])
    elif dataset is not None:
        lines.append(f"dataset: {_value('dataset', dataset)}")
    else:
        lines.append("dataset: (not recorded)")
    metrics = doc.get("metrics")
    if isinstance(metrics, dict):
        keys = [k for k in _METRIC_ORDER if k in metrics]
        keys += [k for k in metrics if k not in keys and k not in ("dataset", "data_source")]
        items = [f"{k}={_value(k, metrics[k])}" for k in keys]
        lines += _wrapped("metrics:", items)
    else:
        lines.append("metrics: (not recorded)")
    config = doc.get("config")
    if isinstance(config, dict):
        lines += _wrapped("config: ", [f"{k}={_value(k, v)}" for k, v in config.items()])
    else:
        lines.append("config:  (not recorded)")
    seed = doc.get("seed", config.get("seed") if isinstance(config, dict) else None)
    lines.append(f"seed:    {seed if seed is not None else '(not recorded)'}")
    lines.append(f"written by digitnet {doc.get('digitnet_version', '(unknown)')}")
    return lines


def cmd_inspect(args: argparse.Namespace) -> int:
    import numpy as np

    from digitnet import reports
    from digitnet.commands import model_path
    from digitnet.commands.evaluate import Pictures, layer_spec
    from digitnet.modelfile import load_model
    from digitnet.text import printable

    path = model_path(args.model)
    net, doc = load_model(path)
    pictures = Pictures(args.out, path, "inspect")
    folder = pictures.folder

    rows = layer_rows(doc["architecture"])
    total = sum(r["parameters"] for r in rows)
    itemsize = np.dtype(doc["dtype"]).itemsize
    size = Path(path).stat().st_size
    print(
        f"model: {path} ({size:,} bytes; format {doc['format_version']}, written by digitnet "
        f"{printable(doc.get('digitnet_version', '?'))})"
    )
    print(f"network: {layer_spec(doc)}, {doc['dtype']}")
    print()
    print("\n".join(_layer_table(rows)))
    print(
        f"total: {total:,} parameters ({total * itemsize:,} bytes of {doc['dtype']}); "
        "'torch' is the index in torch.nn.Sequential"
    )
    print(f"cost: {_cost(doc)}")
    preprocessing = doc.get("preprocessing")
    if isinstance(preprocessing, dict) and isinstance(preprocessing.get("input"), str):
        print(printable(f"input: {preprocessing['input']}"))
    print()
    print("\n".join(printable(line) for line in _record(doc)))  # (escape sequences escaped)
    print()

    histograms = folder / "histograms.png"
    drew = pictures.draw(lambda: reports.plot_weight_histograms(net, histograms))
    shape = (28, 28)
    if isinstance(preprocessing, dict):
        shape_doc = preprocessing.get("image_shape")
        if isinstance(shape_doc, list) and len(shape_doc) == 2:
            shape = (int(shape_doc[0]), int(shape_doc[1]))
    first = net.dense_layers[0]
    if first.n_in == shape[0] * shape[1]:
        weights = folder / "weights.png"
        if pictures.draw(lambda: reports.plot_weights(first.W, weights, image_shape=shape)):
            shown = min(64, first.n_out)
            print(
                f"wrote {weights}: the first layer's weights, {shown} of {first.n_out} units "
                f"as {shape[0]}x{shape[1]} images"
            )
    else:
        print(
            f"no weights picture: the first layer takes {first.n_in} inputs, not "
            f"{shape[0]}x{shape[1]} images"
        )
    if drew:
        print(f"wrote {histograms}: the values of each parameter array")
    sys.stdout.flush()
    return pictures.report()
