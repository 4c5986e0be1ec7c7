PRICES = {"SKU-1001": 1999, "SKU-1002": 2499}


def price_for(sku):
    return PRICES[sku]


def quote(skus):
    return sum(price_for(s) for s in skus)
