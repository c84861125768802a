"""Moved to ``devicekit.runtime`` (one runner and one comparison for every stage); kept as an alias."""

from .runtime.compare import match_outputs  # noqa: F401
from .runtime.tflite import TFLiteRunner  # noqa: F401
