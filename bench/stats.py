"""Percentiles and number formatting for the bench tables."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (linear interpolation); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals below 10 ms, one above."""
    value = seconds * 1000
    if value != value:  # NaN
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def p50_p95_p99(values: Sequence[float]) -> str:
    """'p50 / p95 / p99' in milliseconds."""
    return " / ".join(ms(percentile(values, pct)) for pct in (50, 95, 99))
