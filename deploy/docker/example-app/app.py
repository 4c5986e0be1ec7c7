"""A stand-in for your service in the compose example: logs requests and, now and then, errors.

It writes to stdout and to $APP_LOG (the volume the watcher sidecar and Alloy read). The
errors are real Python exceptions with tracebacks, a few kinds, so watcher has patterns to
group. APP_INTERVAL (seconds between lines) and APP_LINES (stop after N lines) make it
testable.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time

log = logging.getLogger("shop.api")


def charge(order_id: int) -> None:
    raise TimeoutError(f"payment provider did not answer for order {order_id} within 5s")


def load_cart(user_id: int) -> None:
    raise ConnectionRefusedError(f"Error 111 connecting to redis-{user_id % 3}:6379")


def validate(request_id: int) -> None:
    payload = {"id": request_id}
    print(payload["email"])


FAILURES = (
    ("charge failed", charge),
    ("cart unavailable", load_cart),
    ("bad request", validate),
)


def handle(rng: random.Random, n: int) -> None:
    """One request: mostly fine, sometimes one of the failures above with its traceback."""
    if rng.random() < 0.8:
        log.info("GET /orders/%d 200 %dms", n, rng.randint(3, 80))
        return
    message, failing = rng.choice(FAILURES)
    try:
        failing(n)
    except Exception:
        log.exception("%s for request %d", message, n)


def main() -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    path = os.environ.get("APP_LOG")
    if path:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(path))
    for handler in handlers:
        handler.setFormatter(fmt)
        logging.root.addHandler(handler)
    logging.root.setLevel(logging.INFO)
    interval = float(os.environ.get("APP_INTERVAL", "0.5"))
    lines = int(os.environ.get("APP_LINES", "0"))  # 0: forever
    rng = random.Random(int(os.environ.get("APP_SEED", "0")) or None)
    n = 0
    while not lines or n < lines:
        n += 1
        handle(rng, n)
        time.sleep(interval)


if __name__ == "__main__":
    main()
