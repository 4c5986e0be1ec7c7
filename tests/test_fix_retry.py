"""A retry after a reviewer closed the fix's PR: the next attempt reads what they wrote
(PyGithub against the GitHub fake) and feeds it to the model, and deletes the stale branch on
the real bare remote — unless someone added work to it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.fakes.anthropic_api import tool_use
from tests.test_autofix_e2e import FIX_INPUT, Shop, git, shop  # noqa: F401 - the fixture
from tests.test_fix_faults import Rig, github, pricing_group, rig_fixture  # noqa: F401 - fixture
from watcher.model import ErrorGroup

REVIEW = "Returning 0.0 hides empty carts from the UI; raise EmptyCart instead."
CONVERSATION = "Also keep average_item_price pure, please."
ON_LINE = "This branch should log the cart id."
BOT = "Coverage decreased (-0.1%) to 91.2%"


rig = rig_fixture(autofix={"draft": False})  # real git, a bare origin, the fakes


async def closed_by_reviewer(rig: Rig) -> str:
    """Open a fix PR, let a reviewer comment and close it, refresh; the stale branch."""
    rig.model.script(tool_use(FIX_INPUT))
    first = await rig.pipeline.run_one(pricing_group())
    assert first.status == "pr_open", first.error
    rig.github.comment(1, REVIEW, kind="review", state="CHANGES_REQUESTED")
    rig.github.comment(1, CONVERSATION, kind="issue", user="bob")
    rig.github.comment(1, ON_LINE, kind="review_comment", path="shop/pricing.py", line=25)
    rig.github.comment(1, BOT, kind="issue", user="coveralls[bot]", user_type="Bot")
    rig.github.set_state(1, "closed")
    [changed] = await rig.pipeline.refresh_prs()
    assert changed.status == "closed"
    return first.branch


async def test_retry_feeds_the_reviewers_comments_and_deletes_the_stale_branch(rig: Rig) -> None:
    """The retry's prompt holds the review, the conversation comment and the diff-line comment
    (with its path) and the rejected patch — not the bot's; the closed PR's branch is deleted
    from the remote, so the new PR reuses its name."""
    stale = await closed_by_reviewer(rig)
    assert rig.shop.branches() == [stale]
    rig.model.script(tool_use(FIX_INPUT))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    prompt = rig.model.messages[-1].body["messages"][0]["content"]
    section = prompt.split("## A previous fix was closed without merging", 1)[1]
    assert f"alice, review (changes requested): {REVIEW}" in section
    assert f"bob, comment: {CONVERSATION}" in section
    assert f"alice, review comment on shop/pricing.py: {ON_LINE}" in section
    assert BOT not in prompt
    assert "return cart_total(lines) / items" in section  # the rejected patch
    assert fix.details["stale_branch"] == {"branch": stale, "deleted": True}
    assert fix.details["previous"]["notes"] == 3
    assert rig.shop.branches() == [fix.branch] and fix.branch == stale
    assert [p["state"] for p in rig.github.pulls.values()] == ["closed", "open"]


async def test_a_stale_branch_someone_added_work_to_is_kept(rig: Rig, tmp_path: Path) -> None:
    """A human pushed a commit onto the closed PR's branch: the retry leaves it alone (and
    says so), and its own PR goes on a new branch."""
    stale = await closed_by_reviewer(rig)
    work = tmp_path / "human"
    git("clone", "-q", "-b", stale, str(rig.shop.remote), str(work), cwd=tmp_path)
    (work / "NOTES.md").write_text("my take on it\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "human work", cwd=work)
    git("push", "-q", "origin", stale, cwd=work)
    rig.model.script(tool_use(FIX_INPUT))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    assert fix.details["stale_branch"] == {"branch": stale, "deleted": False}
    assert sorted(rig.shop.branches()) == sorted([stale, fix.branch]) and fix.branch != stale
    log = git("log", "--format=%s", stale, cwd=rig.shop.remote)
    assert log.startswith("human work")


async def test_automatic_runs_still_leave_a_closed_group_alone(rig: Rig) -> None:
    """Only an explicit retry (watcher fix, the API) tries again after a close: the candidate
    selection of the daemon and scan skips the group, and nothing is deleted."""
    stale = await closed_by_reviewer(rig)
    assert rig.pipeline.candidates([pricing_group()]) == []
    assert rig.shop.branches() == [stale]


# --- fragments across runs ----------------------------------------------------------------


def fragment_group() -> ErrorGroup:
    """Another group (another message, say a different caller) failing at the same in-app
    location as pricing_group: a fragment of the same bug, found in a later run."""
    return dataclasses.replace(
        pricing_group("pricing0002"), template="ZeroDivisionError: float division by zero"
    )


async def test_a_later_runs_fragment_is_not_fixed_twice(rig: Rig) -> None:
    """The first run's fix records its location (file:function) and opens a PR; a later run's
    group failing there is no candidate, and an explicit fix of it is skipped, naming the PR.
    The location is recorded with the fix in the state DB, so a restarted daemon knows it."""
    rig.model.script(tool_use(FIX_INPUT))
    first = await rig.pipeline.run_one(pricing_group())
    assert first.status == "pr_open", first.error
    [stored] = rig.store.list_fixes(group_id="pricing0001")
    assert stored.details["location"] == "/srv/shop/shop/pricing.py:average_item_price"
    fragment = fragment_group()
    assert rig.pipeline.candidates([fragment]) == []
    skipped = await rig.pipeline.run_one(fragment)
    assert skipped.status == "skipped" and skipped.pr_url == first.pr_url
    assert "same location" in skipped.error and "pricing0001" in skipped.error
    assert len(rig.model.messages) == 1 and len(rig.github.pulls) == 1
    rig.github.set_state(1, "closed")  # a closed PR holds nothing: the fragment may be tried
    await rig.pipeline.refresh_prs()
    assert rig.pipeline.candidates([fragment]) == [fragment]


async def test_a_merged_fix_holds_its_location(rig: Rig) -> None:
    """Once the first group's PR is merged, a fragment found later is not fixed again."""
    rig.model.script(tool_use(FIX_INPUT))
    await rig.pipeline.run_one(pricing_group())
    rig.github.set_state(1, "closed", merged=True)
    [merged] = await rig.pipeline.refresh_prs()
    assert merged.status == "merged"
    assert rig.pipeline.candidates([fragment_group()]) == []
