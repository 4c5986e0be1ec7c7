"""Run one bug: python -m shopapp.crash CASE VALUE; the traceback goes to stderr, uncaught."""

import socket
import sys

from shopapp import (
    cart,
    fakeapi,
    geocode,
    handlers,
    inventory,
    invoices,
    payments,
    pricing,
    repo,
    sessions,
    settings,
    users,
)


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def silent_server():
    """A listener that accepts (backlog) but never answers, so reads time out."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def run(case, value):
    n = int(value)
    if case == "key_error":
        pricing.quote(["SKU-1001", f"SKU-{n}"])
    elif case == "type_error":
        cart.total([{"qty": n % 5 + 1, "unit_price": 100}, {"qty": 1, "unit_price": None}])
    elif case == "attr_error":
        users.notify(n, "your order shipped")
    elif case == "during_handling":
        settings.tenant_setting(n)
    elif case == "db_error":
        repo.save_order(n)
    elif case == "conn_refused":
        payments.charge(closed_port(), n)
    elif case == "timeout":
        _server, port = silent_server()  # kept open until the read times out
        inventory.fetch_stock(port, f"SKU-{n}")
    elif case == "json_body":
        handlers.create_order(f'{{"items": [{n}, {n + 1}] "note": "x"}}')
    elif case == "cache_error":
        sessions.load_session(closed_port(), f"{n:08x}")
    elif case == "rate_limited":
        port = fakeapi.serve(429, '{"error": "quota exceeded"}')
        geocode.locate(port, f"{n}+Main+St")
    elif case == "access_denied":
        denied = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        port = fakeapi.serve(403, denied, "application/xml")
        invoices.archive_invoice(f"http://127.0.0.1:{port}", n, b"%PDF-1.7")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
