"""Receive: models come in here, from a file or folder, a Python package (the catalogue of
packaged models), or another depot; every one is stored whole, then admitted."""

from modeldepot.receive.intake import Intake

__all__ = ["Intake"]
