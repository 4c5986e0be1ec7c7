def line_total(item):
    return item["qty"] * item["unit_price"]


def total(items):
    return sum(line_total(i) for i in items)
