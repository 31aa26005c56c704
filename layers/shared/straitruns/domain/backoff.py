"""Retry delays (spec 4.4)."""

import random
from collections.abc import Callable

from straitruns.domain.models import RetryBackoff

JITTER = 0.2


def retry_delay_secs(
    strategy: RetryBackoff,
    failed_attempt: int,
    initial_secs: float,
    max_secs: float,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Delay before the attempt after `failed_attempt` (1, 2, ...): exponential initial * 2^(n-1),
    linear initial * n, fixed initial; capped at `max_secs`; then ±20 % uniform jitter."""
    n = max(1, failed_attempt)
    if strategy == RetryBackoff.EXPONENTIAL:
        base = initial_secs * 2 ** min(n - 1, 62)
    elif strategy == RetryBackoff.LINEAR:
        base = initial_secs * n
    else:
        base = initial_secs
    capped = min(base, max_secs)
    return max(0.0, float(capped * (1 + uniform(-JITTER, JITTER))))
