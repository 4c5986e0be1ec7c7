"""The repair loop end to end: the real pipeline, real git, the real sandbox, the anthropic SDK
and PyGithub against the fakes, over the sample shop (tests/data/autofix_app).

The scripted model answers in rounds: root cause and a reproduction test first, then the fix;
or a test that does not reproduce, a fix that breaks a passing test, a hostile test. Each
round's feedback reaches the model as the result of its previous tool call, and only
summaries of the sandboxed runs are ever sent, stored or posted.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

from tests.fakes.anthropic_api import tool_use
from tests.test_autofix_e2e import FIX_INPUT, Shop, git, shop  # noqa: F401 - the fixture
from tests.test_fix_faults import Rig, github, pricing_group, rig_fixture  # noqa: F401 - fixture
from tests.test_fix_sandbox import EXFILTRATE, HOOK, KEY, TOKEN, available_modes
from watcher.fix.summary import encodings

VERIFY = f'{sys.executable} -m unittest discover -s tests -p "check_*.py"'
TEST_PATH = "tests/check_empty_cart.py"
ONLY_TEST = {**FIX_INPUT, "edits": [], "plan": "Return 0.0 for a cart without items."}
NO_REPRO = {
    **FIX_INPUT,
    "test": {
        "description": "a cart with items has an average",
        "path": TEST_PATH,
        "content": (
            "import unittest\n\nfrom shop.pricing import Line, average_item_price\n\n\n"
            "class Cart(unittest.TestCase):\n    def test_average(self) -> None:\n"
            "        self.assertEqual(average_item_price([Line('A', 100, 2)]), 100)\n"
        ),
    },
}
BREAKS_TOTAL = {
    **FIX_INPUT,
    "edits": [
        *FIX_INPUT["edits"],
        {
            "path": "shop/pricing.py",
            "search": "    return sum(line.price * line.quantity for line in lines)\n",
            "replace": "    return sum(line.price for line in lines)\n",
        },
    ],
}

pytestmark = pytest.mark.skipif(not available_modes(), reason="no sandbox mode on this machine")


# verify_command and two repair rounds
rig = rig_fixture(autofix={"verify_command": VERIFY, "repair_rounds": 2, "draft": False})


def tool_results(rig: Rig) -> list[str]:
    """The feedback each request carried: the content of its last tool_result."""
    found = []
    for request in rig.model.messages:
        last = request.body["messages"][-1]["content"]
        if isinstance(last, list):
            found.append(last[0]["content"])
    return found


def secrets_in(*texts: str) -> list[str]:
    """Which encodings of the daemon's keys appear in `texts`."""
    joined = "\n".join(texts)
    return [kind for s in (KEY, TOKEN) for kind, form in encodings(s) if form in joined]


async def test_test_first_then_the_fix_then_a_verified_pr(rig: Rig) -> None:
    """Round 1 gives the root cause and a reproduction test only: the baseline passes, the test
    fails on the base commit, and the model is asked for the fix. Round 2 adds it: the test
    passes, nothing that passed breaks, and the PR says verified, with both rounds' tokens."""
    rig.model.script(
        tool_use(ONLY_TEST, input_tokens=1000, output_tokens=100),
        tool_use(FIX_INPUT, input_tokens=1500, output_tokens=200),
    )
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    verify = fix.details["verify"]
    assert verify["verified"] is True and verify["reproduced"] is True
    runs = verify["runs"]
    assert runs["baseline"]["ok"] and runs["baseline"]["passed"] == 2
    assert not runs["reproduction"]["ok"]
    assert runs["reproduction"]["failing"] == ["check_empty_cart.EmptyCart.test_average"]
    assert runs["after"]["ok"] and runs["after"]["passed"] == 3
    [feedback] = tool_results(rig)
    assert "fails on the base commit. Now give the fix" in feedback
    second = rig.model.messages[1].body["messages"]
    assert second[1]["content"][0]["type"] == "tool_use"  # the model's own call, answered
    assert fix.details["tokens"] == {"input": 2500, "output": 300}
    [pull] = rig.github.pulls.values()
    assert "verified: 3 passed" in pull["body"] and pull["draft"] is False
    assert f"(added: `{TEST_PATH}`)" in pull["body"]
    assert "The reproduction test failed before the fix and passes with it." in pull["body"]


async def test_a_test_that_does_not_reproduce_is_sent_back(rig: Rig) -> None:
    """A test that passes on the base commit is not a reproduction: the model hears so (with
    the run's summary) and its next test is the one that counts."""
    rig.model.script(tool_use(NO_REPRO), tool_use(FIX_INPUT))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    [feedback] = tool_results(rig)
    assert f"The test {TEST_PATH} does not fail on the base commit" in feedback
    assert "3 passed" in feedback
    assert fix.details["verify"]["reproduced"] is True and fix.details["repair_rounds"] == 1


async def test_a_fix_that_breaks_a_passing_test_is_repaired(rig: Rig) -> None:
    """A fix that makes a previously passing test fail is sent back naming that test; the
    next round's fix is verified."""
    rig.model.script(tool_use(BREAKS_TOTAL), tool_use(FIX_INPUT))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    [feedback] = tool_results(rig)
    assert "these tests fail now: " in feedback
    assert "check_pricing.PricingChecks.test_total" in feedback
    assert fix.details["verify"]["verified"] is True


async def test_unusable_edits_keep_the_root_cause(rig: Rig) -> None:
    """Edits that never pass verification within repair_rounds (the model repeats itself):
    with verify_failure = "draft" the PR is a draft that says NOT verified and names the
    failing tests; the root cause is kept."""
    rig.model.script(tool_use(BREAKS_TOTAL), repeat_last=True)
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open" and fix.details["repair_rounds"] == 2
    assert len(rig.model.messages) == 3
    [pull] = rig.github.pulls.values()
    assert pull["draft"] is True and "NOT verified" in pull["body"]
    assert "check_pricing.PricingChecks.test_total" in pull["body"]
    assert fix.root_cause.startswith("average_item_price divides")


async def test_low_fixability_asks_for_no_code(rig: Rig) -> None:
    """An answer whose fixability score is under min_fixability ends the fix: one request,
    the root cause kept, nothing verified, pushed or opened."""
    rig.model.script(tool_use({**FIX_INPUT, "fixability_score": 0.1}))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "analyzed" and "below min_fixability 0.50" in fix.details["decision"]
    assert len(rig.model.messages) == 1 and rig.github.pulls == {}
    assert fix.root_cause and rig.remote_branches() == []


async def test_a_hostile_reproduction_test_leaks_nothing(rig: Rig) -> None:
    """The model's "reproduction test" hunts for the daemon's keys and plants hooks through the
    copy's links: the user's checkout is untouched, and no key in any encoding reaches the
    model's next request, the store, the PR or the remote."""
    hostile = EXFILTRATE.replace("sys.exit(3 if found else 4)", "") + HOOK
    test = {"description": "repro", "path": TEST_PATH, "content": hostile}
    rig.model.script(tool_use({**ONLY_TEST, "test": test}), tool_use(FIX_INPUT))
    hooks = sorted(p.name for p in (rig.shop.repo / ".git/hooks").iterdir())
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    assert sorted(p.name for p in (rig.shop.repo / ".git/hooks").iterdir()) == hooks
    assert not (rig.shop.repo / "planted.txt").exists()
    assert git("status", "--porcelain", cwd=rig.shop.repo) == ""
    stored = json.dumps([dataclasses.asdict(f) for f in rig.store.list_fixes()])
    [pull] = rig.github.pulls.values()
    texts = [r.text for r in rig.model.requests] + [pull["body"], stored]
    assert secrets_in(*texts) == []
