"""Prices shown in the cart and on the recommendations widget."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    """One cart line: a product, its unit price in cents and how many."""

    sku: str
    price: int
    quantity: int


def cart_total(lines: list[Line]) -> int:
    """The cart's total in cents."""
    return sum(line.price * line.quantity for line in lines)


def average_item_price(lines: list[Line]) -> float:
    """The mean price of one item in the cart, in cents."""
    items = sum(line.quantity for line in lines)
    return cart_total(lines) / items


def price_summary(lines: list[Line]) -> dict[str, float]:
    """What the cart widget shows."""
    return {"total": cart_total(lines), "average": average_item_price(lines)}
