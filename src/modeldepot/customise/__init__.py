"""Customise: adapting a model to the user's data. Training data is checked here first."""

from modeldepot.customise.data import DataReport, check_data

__all__ = ["DataReport", "check_data"]
