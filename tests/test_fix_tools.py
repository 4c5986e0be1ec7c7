"""The model's read-only tools: read_file and grep, confined to the checkout, capped, logged,
and the tool-use conversation through the anthropic SDK against the fake Messages API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fakes.anthropic_api import AnthropicFake, tool_use
from tests.test_autofix_e2e import FIX_INPUT, Shop, shop  # noqa: F401 - the fixture
from tests.test_fix_faults import Rig, github, pricing_group, rig_fixture  # noqa: F401 - fixture
from watcher.fix.tools import ToolSession

SECRET = "ghp_R8mVq2xT7nLp4sKd9wYb3HcJ6fGz1aE5uQoI"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout with code, a .env, a git dir, and a symlink pointing outside it."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "billing.py").write_text("".join(f"line {n}\n" for n in range(1, 301)))
    (root / "app" / "config.py").write_text(f"RETRIES = 3\nTOKEN = '{SECRET}'\n")
    (root / ".env").write_text("API_KEY=abc\n")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (tmp_path / "outside.txt").write_text("RETRIES outside\n")
    os.symlink(tmp_path / "outside.txt", root / "app" / "link.txt")
    return root


def session(root: Path, **kw: object) -> ToolSession:
    """A session whose `clean` redacts the one known secret, as the analyzer's redactor does."""
    return ToolSession(root, clean=lambda t: t.replace(SECRET, "<secret:github>"), **kw)  # type: ignore[arg-type]


def test_read_file_returns_numbered_lines_and_records_the_read(checkout: Path) -> None:
    """read_file gives the asked lines with their numbers, and the file counts as shown."""
    tools = session(checkout)
    text, error = tools.run(
        "read_file", {"path": "app/billing.py", "start_line": 10, "end_line": 12}
    )
    assert not error and "10 | line 10\n11 | line 11\n12 | line 12" in text
    assert tools.read == {"app/billing.py"}
    assert tools.calls[0].ok and tools.calls[0].bytes == len(text.encode())


@pytest.mark.parametrize(
    "path",
    ["../outside.txt", "/etc/passwd", "app/../../outside.txt", "app/link.txt", ".env",
     ".git/config", "nope.py", "app"],
)  # fmt: skip
def test_read_file_never_reads_outside_or_secrets(checkout: Path, path: str) -> None:
    """Paths escaping the checkout (.., absolute, a symlink out), .env, .git and non-files are
    refused with an error result; nothing of them is returned and nothing counts as read."""
    tools = session(checkout)
    text, error = tools.run("read_file", {"path": path})
    assert error
    assert "API_KEY" not in text and "[core]" not in text and "RETRIES outside" not in text
    assert tools.read == set() and tools.calls[0].ok is False


def test_grep_is_a_fixed_string_search_confined_and_redacted(checkout: Path) -> None:
    """grep finds "RETRIES" in the app (not through the symlink, not in .env/.git), treats the
    text literally (a regex metacharacter matches nothing special), and redacts secrets."""
    tools = session(checkout)
    text, error = tools.run("grep", {"text": "RETRIES"})
    assert not error and text == "app/config.py:1: RETRIES = 3"
    text, _ = tools.run("grep", {"text": "TOKEN ="})
    assert SECRET not in text and "<secret:github>" in text
    assert "no match" in tools.run("grep", {"text": "line .*"})[0]
    assert tools.run("grep", {"text": "API_KEY"})[0].startswith("no match")


def test_results_are_capped_and_calls_limited(checkout: Path) -> None:
    """A result over max_bytes is cut (and says so); after max_calls every call is refused
    with an instruction to answer, and each refusal is recorded too."""
    tools = session(checkout, max_calls=2, max_bytes=100)
    text, error = tools.run("read_file", {"path": "app/billing.py"})
    assert not error and len(text.encode()) < 200 and "cut at 100 bytes" in text
    tools.run("grep", {"text": "line 2"})
    text, error = tools.run("read_file", {"path": "app/config.py"})
    assert error and "limit (2) reached" in text
    assert [c.ok for c in tools.calls] == [True, True, False]


# --- the conversation, end to end ---------------------------------------------------------

COUPON_FIX = {
    **FIX_INPUT,
    "edits": [
        *FIX_INPUT["edits"],
        {"path": "shop/coupons.py", "search": "    return COUPONS[code.strip().upper()]\n",
         "replace": "    return COUPONS.get(code.strip().upper(), 0)\n"},
    ],
}  # fmt: skip


# 2 tool calls per analysis, on a model that accepts a forced tool choice
rig = rig_fixture(autofix={"model": "claude-sonnet-4-6"}, tool_calls=2)


async def test_the_model_reads_a_file_then_may_edit_it(rig: Rig) -> None:
    """The model asks for shop/coupons.py (not in the prompt's excerpts); the next request
    carries its tool_use and the tool_result with the file's lines; its report_fix may then
    edit that file. Tokens of both requests are counted; the call is recorded with the fix."""
    rig.model.script(
        tool_use({"path": "shop/coupons.py"}, name="read_file", input_tokens=900, output_tokens=40),
        tool_use(COUPON_FIX, input_tokens=1300, output_tokens=200),
    )
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    first, second = (r.body for r in rig.model.messages)
    assert first["tool_choice"]["type"] == "any"
    assert {t["name"] for t in first["tools"]} == {"report_fix", "read_file", "grep"}
    assert "shop/coupons.py" not in first["messages"][0]["content"]
    call, result = second["messages"][1]["content"][0], second["messages"][2]["content"][0]
    assert call["type"] == "tool_use" and call["name"] == "read_file"
    assert result["type"] == "tool_result" and result["tool_use_id"] == call["id"]
    assert "def discount_percent(code: str) -> int:" in result["content"]
    assert "shop/coupons.py" in fix.diff
    assert fix.details["tokens"] == {"input": 2200, "output": 240}
    assert fix.details["tool_calls"] == [
        {"tool": "read_file", "args": {"path": "shop/coupons.py"}, "ok": True,
         "bytes": len(result["content"].encode()), "note": ""}
    ]  # fmt: skip
    assert rig.pipeline.budget.tokens_used() == 2440
    assert rig.pipeline.budget.fixes_used() == 1  # a tool step is not another attempt


async def test_an_edit_to_a_file_never_shown_nor_read_is_refused(rig: Rig) -> None:
    """Without the read, the same edit of shop/coupons.py is refused by the guard."""
    rig.model.script(tool_use(COUPON_FIX))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "rejected" and "shop/coupons.py" in (fix.error or "")


async def test_past_the_call_limit_report_fix_is_forced(rig: Rig) -> None:
    """A model that keeps browsing gets its calls answered until the limit (2); the third call
    is answered with an error result and the request forces report_fix."""
    browse = tool_use({"text": "COUPONS"}, name="grep")
    rig.model.script(browse, browse, browse, tool_use(FIX_INPUT))
    fix = await rig.pipeline.run_one(pricing_group())
    assert fix.status == "pr_open", fix.error
    bodies = [r.body for r in rig.model.messages]
    assert [b["tool_choice"]["type"] for b in bodies] == ["any", "any", "tool", "tool"]
    assert bodies[-1]["tool_choice"]["name"] == "report_fix"
    last_result = bodies[-1]["messages"][-1]["content"][0]
    assert last_result["is_error"] is True and "limit (2) reached" in last_result["content"]
    assert [c["ok"] for c in fix.details["tool_calls"]] == [True, True, False]


async def test_the_fake_refuses_a_tool_use_left_unanswered(anthropic_fake: AnthropicFake) -> None:
    """Like the real API, the fake answers 400 when an assistant tool_use is not answered by a
    tool_result in the next message, or a tool_result answers an id nobody called — so the
    conversation the analyzer builds is checked, not just recorded."""
    import anthropic

    from tests.fakes.anthropic_api import API_KEY

    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=anthropic_fake.url, max_retries=0)
    call = {"type": "tool_use", "id": "toolu_1", "name": "grep", "input": {"text": "x"}}
    unanswered = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": "go on"},
    ]
    stray = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": ""}],
        },
    ]
    try:
        for messages, text in ((unanswered, "without `tool_result`"), (stray, "unexpected")):
            with pytest.raises(anthropic.BadRequestError, match=text):
                await client.messages.create(model="m", max_tokens=10, messages=messages)  # type: ignore[arg-type]
    finally:
        await client.close()
