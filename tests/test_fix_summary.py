"""What leaves the verify sandbox: counts and names parsed from real runner output, and the
tail withheld whenever it may carry a secret in any dress."""

from __future__ import annotations

import base64
import codecs

import pytest

from watcher.fix.summary import doubt, failing_names, parse_counts, summarise

KEY = "sk-ant-api03-Zq8XvN2mK5pL7rT9wY3bC6dF1gH4jS0aE"
PYTEST = """\
tests/test_cart.py F.                                                    [100%]
=================================== FAILURES ===================================
FAILED tests/test_cart.py::test_empty - ZeroDivisionError: division by zero
ERROR tests/test_db.py::test_conn - OSError
1 failed, 1 passed, 1 error in 0.12s
"""
UNITTEST = """\
ERROR: test_average (check_empty_cart.EmptyCart.test_average)
----------------------------------------------------------------------
FAIL: test_total (check_pricing.PricingChecks.test_total)
----------------------------------------------------------------------
Ran 5 tests in 0.002s

FAILED (failures=1, errors=1)
"""


def test_pytest_and_unittest_results_are_parsed() -> None:
    """Counts from the closing line and failing ids from the summaries of both runners."""
    assert parse_counts(PYTEST) == {"failed": 1, "passed": 1, "errors": 1}
    assert failing_names(PYTEST) == [
        "tests/test_cart.py::test_empty",
        "tests/test_db.py::test_conn",
    ]
    assert parse_counts(UNITTEST) == {"passed": 3, "failed": 1, "errors": 1}
    assert failing_names(UNITTEST) == [
        "check_empty_cart.EmptyCart.test_average",
        "check_pricing.PricingChecks.test_total",
    ]


def _encoded(secret: str, offset: int) -> dict[str, str]:
    blob = ("PATH=/usr/bin\0HOME=/root\0"[:offset] + f"ANTHROPIC_API_KEY={secret}\0").encode()
    return {
        "base64": base64.b64encode(blob).decode(),
        "base64url": base64.urlsafe_b64encode(blob).decode(),
        "base32": base64.b32encode(blob).decode(),
        "hex": blob.hex(),
        "reversed": blob.decode()[::-1],
        "plain with newlines": "\n".join(secret[i : i + 8] for i in range(0, len(secret), 8)),
    }


@pytest.mark.parametrize("offset", [0, 1, 2, 5])
@pytest.mark.parametrize("form", list(_encoded(KEY, 0)))
def test_a_known_secret_in_any_dress_withholds_the_tail(offset: int, form: str) -> None:
    """The key inside a longer blob at any alignment, base64/base64url/base32/hex/reversed or
    cut into lines: the tail is withheld, the counts still published."""
    output = f"{PYTEST}debug: {_encoded(KEY, offset)[form]}\n"
    summary = summarise(1, output, secrets=[KEY], clean=str)
    assert summary.tail == "" and summary.withheld.startswith("output withheld")
    assert (summary.failed, summary.passed) == (1, 1) and summary.exit_code == 1


def test_an_unknown_high_entropy_blob_is_withheld_too() -> None:
    """A long random-looking run is dropped even when it matches no known secret (when in
    doubt); an ordinary traceback with paths and hashes of git is kept."""
    blob = base64.b64encode(codecs.encode(KEY * 2, "rot13").encode()).decode()
    assert doubt(f"x {blob}", []) == "it contains a long high-entropy string"
    ordinary = (
        'File "/tmp/watcher-verify-k2j3h4_x/repo/shop/pricing.py", line 25\n'
        "commit 3f7a46b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6\nZeroDivisionError: division by zero\n"
    )
    assert doubt(ordinary, [KEY]) is None
    assert summarise(1, ordinary, secrets=[KEY], clean=str).tail.endswith("by zero\n")


def test_a_test_name_carrying_a_secret_is_withheld() -> None:
    """A failing test whose id embeds the key (a model can name a test anything) is dropped
    from the names; the others stay."""
    encoded = base64.b64encode(KEY.encode()).decode().rstrip("=").replace("+", "_")
    output = f"FAILED tests/t.py::test_{encoded}\nFAILED tests/t.py::test_ok\n1 failed in 1s\n"
    summary = summarise(1, output, secrets=[KEY], clean=str)
    assert summary.failing == ("tests/t.py::test_ok",) and "name(s) withheld" in summary.withheld
