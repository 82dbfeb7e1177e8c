"""The targets the figures are judged against (reported as met / not met, never asserted in tests)."""

from __future__ import annotations

from dataclasses import dataclass

CACHED_READ_VS_CEILING = 0.6
DB_READ_VS_CEILING = 0.45
POOL_VS_CONNECT = 3.0
SAGA_ORDERS_PER_SECOND = 250.0  # direct to orders (in a cluster the ingress controller is the gateway)
SAGA_GATEWAY_ORDERS_PER_SECOND = 200.0  # through the local gateway
SAGA_P99_MS = 250.0
RSS_VS_MEMORY_REQUEST = 0.6
METRICS_COST = 0.10  # of the cached read's throughput (issue 15)


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool

    @property
    def word(self) -> str:
        return "met" if self.met else "**not met**"


_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("384Mi", "1Gi", "500M") in bytes."""
    number = quantity.rstrip("KMGTikm")
    suffix = quantity[len(number) :]
    if suffix not in _UNITS:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(number) * _UNITS[suffix])
