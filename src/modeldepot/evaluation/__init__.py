"""Evaluation: tasks, grading, runs over any model the depot serves (through a `Connector`
given by the caller), and their comparison."""

__all__: list[str] = []
