"""The one-line switch: ``py_mini_racer`` is polyracer's compatibility layer."""

from polyracer.compat.py_mini_racer import *  # noqa: F403
from polyracer.compat.py_mini_racer import __all__  # noqa: F401
