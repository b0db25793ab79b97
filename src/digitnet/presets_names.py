"""Component names for the command line's choices, without importing NumPy.

``digitnet --help`` must stay light, so these lists are written out here rather than read from
the registries (which import NumPy); tests/test_cli.py checks that each equals its registry:
``ACTIVATIONS`` (less softmax, an output only), ``OPTIMIZERS``, ``PRESETS``, ``COSTS`` (the short
names), ``augment.KINDS``, ``Schedule.KINDS``, ``INITIALISERS`` and ``network.DTYPES``.
"""

ACTIVATION_NAMES = ["relu", "leaky_relu", "sigmoid", "tanh", "arctan", "identity"]
OPTIMIZER_NAMES = ["gd", "sgd", "momentum", "nesterov", "adam"]
PRESET_NAMES = ["default", "best", "tutorial", "seed-16-16", "sigmoid-mse"]
LOSS_NAMES = ["ce", "mse"]
AUGMENT_NAMES = ["none", "affine", "elastic", "both"]
SCHEDULE_NAMES = ["constant", "step", "cosine"]
INIT_NAMES = ["he", "glorot", "xavier", "lecun", "uniform"]
DTYPE_NAMES = ["float32", "float64"]
