"""Stock levels per SKU."""

from __future__ import annotations

STOCK: dict[str, int] = {"SKU-1": 12, "SKU-2": 0, "SKU-3": 5}


def reserve(sku: str, quantity: int) -> int:
    """Take `quantity` items of `sku` out of stock; returns what is left."""
    left = STOCK[sku] - quantity
    if left < 0:
        raise ValueError(f"not enough {sku} in stock")
    STOCK[sku] = left
    return left
