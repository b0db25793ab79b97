"""The error types of digitnet, one per concern, each carrying a one-line hint.

The library raises these and never prints; the command line turns one into a single line on
stderr (``error: <message>`` then ``hint: <hint>``) and an exit status.
"""

from __future__ import annotations


class DigitnetError(Exception):
    """Base class: a message that says what is wrong and a hint that says what to do."""

    exit_status = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ConfigError(DigitnetError, ValueError):
    """A parameter, spec string or component name that digitnet cannot use."""

    exit_status = 2


class ShapeError(DigitnetError, ValueError):
    """Arrays whose shapes do not fit the layer or network they are given to."""


class DataError(DigitnetError):
    """A data file or folder that is missing, truncated, corrupt or mislabelled."""


class DivergenceError(DigitnetError, ArithmeticError):
    """Training produced a NaN or infinite loss: the learning rate is usually too large."""


class ModelFileError(DigitnetError):
    """A model file that cannot be read, written or trusted."""


class ImageError(DigitnetError):
    """An image of a digit that cannot be read, is too large to decode, or shows no digit."""
