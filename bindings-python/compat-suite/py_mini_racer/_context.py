"""PyMiniRacer's internal context table, which polyracer does not have."""


def context_count() -> int:
    raise NotImplementedError("PyMiniRacer's internal context table (see internals.txt)")
