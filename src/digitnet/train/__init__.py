"""Training: the loop that turns data and a network into a trained network."""

from digitnet.train.loop import History, fit

__all__ = ["History", "fit"]
