"""A small shop backend: carts, prices, stock and coupons."""
