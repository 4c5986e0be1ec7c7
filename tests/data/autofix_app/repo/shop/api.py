"""The HTTP handlers (framework glue trimmed)."""

from __future__ import annotations

from shop.coupons import discount_percent
from shop.inventory import reserve
from shop.pricing import Line, price_summary


def get_cart(lines: list[Line]) -> dict[str, float]:
    """GET /cart"""
    return price_summary(lines)


def post_reserve(sku: str, quantity: int) -> int:
    """POST /reserve"""
    return reserve(sku, quantity)


def post_coupon(code: str) -> int:
    """POST /coupon"""
    return discount_percent(code)
