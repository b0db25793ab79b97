"""Component names for the command line's choices, without importing NumPy.

Kept in step with the registries (``ACTIVATIONS``, ``OPTIMIZERS``, ``PRESETS``) by a test.
"""

ACTIVATION_NAMES = ["relu", "leaky_relu", "sigmoid", "tanh", "arctan", "identity"]
OPTIMIZER_NAMES = ["gd", "sgd", "momentum", "nesterov", "adam"]
PRESET_NAMES = ["default", "best", "tutorial", "seed-16-16", "sigmoid-mse"]
