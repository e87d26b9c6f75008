"""``featurestore demo``: the example fraud-detection repo end to end, one module per step.

The steps share a :class:`~featurestore.cli._demo._context.DemoContext`; ``_runner`` holds
their order. Locating the repo and importing its data generator (``_setup``) are also what the
tests use to copy the example repo and generate its data.
"""

from featurestore.cli._demo._runner import demo
from featurestore.cli._demo._setup import NOT_COPIED, find_example, load_generator

__all__ = ["NOT_COPIED", "demo", "find_example", "load_generator"]
