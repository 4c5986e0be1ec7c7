"""Coupon codes and their discounts."""

from __future__ import annotations

COUPONS: dict[str, int] = {"WELCOME10": 10, "SPRING25": 25}


def discount_percent(code: str) -> int:
    """The discount of a coupon code, in percent."""
    return COUPONS[code.strip().upper()]
