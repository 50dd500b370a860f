"""Where PyMiniRacer's suite imports ``mini_racer`` from."""

from polyracer.compat.py_mini_racer import MiniRacer, StrictMiniRacer, mini_racer  # noqa: F401
