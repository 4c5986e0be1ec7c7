"""Pricing checks (run with: python -m unittest discover -s tests -p "check_*.py")."""

import unittest

from shop.pricing import Line, average_item_price, cart_total


class PricingChecks(unittest.TestCase):
    """cart_total and average_item_price on ordinary carts."""

    def test_total(self) -> None:
        """The total sums price times quantity."""
        self.assertEqual(cart_total([Line("SKU-1", 250, 2), Line("SKU-3", 100, 1)]), 600)

    def test_average(self) -> None:
        """The average is per item, not per line."""
        self.assertEqual(average_item_price([Line("SKU-1", 250, 2), Line("SKU-3", 100, 1)]), 200)


if __name__ == "__main__":
    unittest.main()
