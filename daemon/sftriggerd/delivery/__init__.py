"""Delivery: claim due deliveries, sign, POST, classify the answer, record the outcome.

Pure decisions (`signing`, `backoff`, `outcome`, `breaker`) are kept apart from the loops
(`worker`, `dispatcher`) and from the one network call (`sender`).
"""

from .breaker import BreakerPolicy, BreakerSnapshot
from .dispatcher import Dispatcher, build_dispatcher

__all__ = ["BreakerPolicy", "BreakerSnapshot", "Dispatcher", "build_dispatcher"]
