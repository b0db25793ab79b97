"""digitnet: a neural network written from scratch in NumPy that learns to read handwritten digits.

The public API, loaded lazily so that ``import digitnet`` (and ``digitnet --help``) stays light::

    import digitnet
    data = digitnet.load_dataset("embedded")          # MNIST: 10,000 train, 10,000 test
    net = digitnet.Network.from_spec("784-128-10", seed=0)
    history = net.fit(data.X_train, data.y_train, epochs=5, optimizer="adam")
    net.evaluate(data.X_test, data.y_test)            # (cost, accuracy)
    digitnet.save_model("model.safetensors", net)     # what 'digitnet predict' and 'serve' read
    net, doc = digitnet.load_model("model.safetensors")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from digitnet._version import __version__

_EXPORTS = {
    "Network": "digitnet.network",
    "parse_spec": "digitnet.network",
    "Dense": "digitnet.layers",
    "Dropout": "digitnet.layers",
    "Layer": "digitnet.layers",
    "ReLU": "digitnet.activations",
    "LeakyReLU": "digitnet.activations",
    "Sigmoid": "digitnet.activations",
    "Tanh": "digitnet.activations",
    "Arctan": "digitnet.activations",
    "Softmax": "digitnet.activations",
    "Identity": "digitnet.activations",
    "CrossEntropy": "digitnet.costs",
    "MeanSquaredError": "digitnet.costs",
    "GradientDescent": "digitnet.optim",
    "Momentum": "digitnet.optim",
    "Adam": "digitnet.optim",
    "Schedule": "digitnet.optim",
    "fit": "digitnet.train.loop",
    "FitOptions": "digitnet.train.loop",
    "TrainConfig": "digitnet.train.config",
    "PRESETS": "digitnet.presets",
    "get_preset": "digitnet.presets",
    "gradcheck": "digitnet.gradcheck",
    "load_model": "digitnet.modelfile",
    "save_model": "digitnet.modelfile",
    "load_dataset": "digitnet.data.datasets",
    "Dataset": "digitnet.data.datasets",
    "DigitnetError": "digitnet.errors",
    "ConfigError": "digitnet.errors",
    "DataError": "digitnet.errors",
    "DivergenceError": "digitnet.errors",
    "ShapeError": "digitnet.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'digitnet' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
