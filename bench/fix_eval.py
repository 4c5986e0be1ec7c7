#!/usr/bin/env python3
"""Auto-fix evaluation: real bugs in small repos, their real crash logs, the whole pipeline.

For each scenario the bench builds a git repository (an app module with a bug, a passing test
suite, a bare origin), runs the buggy call to capture its real traceback, writes a log file with
that crash several times (and a GitHub token and an Anthropic key in neighbouring lines), then
runs watcher's scan (parse → classify → group) and the fix pipeline with the real sandbox, real
git, PyGithub against the GitHub fake and the anthropic SDK against:

- the scripted model (default, deterministic): round 1 gives the root cause and a reproduction
  test, round 2 the fix; some scenarios first give a fix that breaks a passing test (the repair
  loop has to catch it), operational ones give a low fixability score;
- the real API (`--real`, needs ANTHROPIC_API_KEY; not run in tests).

Prints per scenario and in total: context recall (the bug's function in the first prompt),
prompt tokens (~chars/4 of the first request), patch-applies rate, reproduction-test rate,
verify pass rate, PRs opened, and any secret found in any request to the model or GitHub.

Usage: python bench/fix_eval.py [--real] [--only NAME] [--keep DIR]
"""

# ruff: noqa: E501 - the scenario table reads best one scenario per block

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.fakes.anthropic_api import API_KEY, AnthropicFake, tool_use  # noqa: E402
from tests.fakes.github_api import TOKEN, GitHubFake  # noqa: E402
from watcher.config import load_config  # noqa: E402
from watcher.fix.analyze import Analyzer, TokenBudget  # noqa: E402
from watcher.fix.git import Worktree  # noqa: E402
from watcher.fix.github import GitHub  # noqa: E402
from watcher.fix.pipeline import FixPipeline  # noqa: E402
from watcher.fix.redact import Redactor  # noqa: E402
from watcher.fix.summary import encodings  # noqa: E402
from watcher.model import ErrorGroup  # noqa: E402
from watcher.scan import scan  # noqa: E402
from watcher.store import Store  # noqa: E402

LOG_SECRETS = ("ghp_R8mVq2xT7nLp4sKd9wYb3HcJ6fGz1aE5uQoI", "sk-ant-api03-pTyGJMuHbEL31IeL2HPcH")
GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


@dataclass(frozen=True)
class Scenario:
    """One bug: `code` of `module` crashes when `trigger` runs; `search`→`replace` fixes it;
    `test` reproduces it; `existing` is the suite that passes before."""

    name: str
    module: str
    function: str
    code: str
    trigger: str
    search: str
    replace: str
    test: str
    existing: str
    operational: bool = False  # the cause is outside the code: expect no patch
    wrong_first: tuple[str, str] | None = None  # a first fix that breaks the existing suite
    extra: tuple[tuple[str, str], ...] = ()  # more files of the repo: (path, text)
    needs: tuple[str, ...] = ()  # text beyond `def function` the first prompt must hold
    entry: str = ""  # the module the crash is triggered through (default `module`)
    log_root: str = ""  # the repo dir the service runs from: shown as /app in the log


def s(name: str, fn: str, code: str, trigger: str, fix: tuple[str, str], check: str,
      existing: str, **kw: Any) -> Scenario:  # fmt: skip
    """A scenario in app/<name>.py (compact constructor for the table below)."""
    module = f"app/{name}.py"
    return Scenario(
        name, module, fn, textwrap.dedent(code).lstrip(), trigger, fix[0], fix[1],
        textwrap.dedent(check).lstrip(), textwrap.dedent(existing).lstrip(), **kw,
    )  # fmt: skip


SCENARIOS = [
    s("cart", "average_price", """
        def average_price(prices):
            return sum(prices) / len(prices)
        """, "average_price([])",
      ("    return sum(prices) / len(prices)", "    if not prices:\n        return 0.0\n    return sum(prices) / len(prices)"),
      "from app.cart import average_price\n\ndef test_empty():\n    assert average_price([]) == 0.0\n",
      "from app.cart import average_price\n\ndef test_avg():\n    assert average_price([2, 4]) == 3\n",
      wrong_first=("    return sum(prices) / len(prices)", "    return 0.0")),
    s("coupons", "discount", """
        RATES = {"SAVE5": 5, "SAVE20": 20}

        def discount(code):
            return RATES[code]
        """, "discount('SAVE10')",
      ("    return RATES[code]", "    return RATES.get(code, 0)"),
      "from app.coupons import discount\n\ndef test_unknown():\n    assert discount('SAVE10') == 0\n",
      "from app.coupons import discount\n\ndef test_known():\n    assert discount('SAVE5') == 5\n"),
    s("users", "display_name", """
        def display_name(user):
            return user.get("nickname").strip() or user["name"]
        """, "display_name({'name': 'Ann'})",
      ('    return user.get("nickname").strip() or user["name"]', '    return (user.get("nickname") or "").strip() or user["name"]'),
      "from app.users import display_name\n\ndef test_no_nick():\n    assert display_name({'name': 'Ann'}) == 'Ann'\n",
      "from app.users import display_name\n\ndef test_nick():\n    assert display_name({'name': 'A', 'nickname': ' B '}) == 'B'\n"),
    s("totals", "order_total", """
        def order_total(lines):
            total = 0
            for line in lines:
                total += line["qty"] * line["price"]
            return total + lines[0]["shipping"]
        """, "order_total([])",
      ('    return total + lines[0]["shipping"]', '    return total + (lines[0]["shipping"] if lines else 0)'),
      "from app.totals import order_total\n\ndef test_empty():\n    assert order_total([]) == 0\n",
      "from app.totals import order_total\n\ndef test_one():\n    assert order_total([{'qty': 2, 'price': 3, 'shipping': 1}]) == 7\n",
      wrong_first=('    return total + lines[0]["shipping"]', "    return total")),
    s("ages", "parse_age", """
        def parse_age(text):
            return int(text)
        """, "parse_age('')",
      ("    return int(text)", "    return int(text) if text.strip() else None"),
      "from app.ages import parse_age\n\ndef test_blank():\n    assert parse_age('') is None\n",
      "from app.ages import parse_age\n\ndef test_num():\n    assert parse_age('42') == 42\n"),
    s("scores", "add_bonus", """
        def add_bonus(score, bonus=None):
            return score + bonus
        """, "add_bonus(10)",
      ("    return score + bonus", "    return score + (bonus or 0)"),
      "from app.scores import add_bonus\n\ndef test_no_bonus():\n    assert add_bonus(10) == 10\n",
      "from app.scores import add_bonus\n\ndef test_bonus():\n    assert add_bonus(1, 2) == 3\n"),
    s("tree", "depth", """
        def depth(node):
            return 1 + depth(node.get("parent"))
        """, "depth({'parent': None})",
      ('    return 1 + depth(node.get("parent"))', '    if node is None:\n        return 0\n    return 1 + depth(node.get("parent"))'),
      "from app.tree import depth\n\ndef test_root():\n    assert depth({'parent': None}) == 1\n",
      "from app.tree import depth\n\ndef test_none():\n    import pytest\n    with pytest.raises(Exception):\n        depth(5)\n"),
    s("csvrow", "split_row", """
        def split_row(row):
            name, email = row.split(",")
            return name, email
        """, "split_row('ann,ann@x.org,admin')",
      ('    name, email = row.split(",")', '    name, email = row.split(",")[:2]'),
      "from app.csvrow import split_row\n\ndef test_extra():\n    assert split_row('a,b,c') == ('a', 'b')\n",
      "from app.csvrow import split_row\n\ndef test_two():\n    assert split_row('a,b') == ('a', 'b')\n"),
    s("firstitem", "first_sku", """
        def first_sku(order):
            return order["items"][0]["sku"]
        """, "first_sku({'items': []})",
      ('    return order["items"][0]["sku"]', '    items = order["items"]\n    return items[0]["sku"] if items else None'),
      "from app.firstitem import first_sku\n\ndef test_empty():\n    assert first_sku({'items': []}) is None\n",
      "from app.firstitem import first_sku\n\ndef test_one():\n    assert first_sku({'items': [{'sku': 'A'}]}) == 'A'\n"),
    s("payload", "read_payload", """
        import json

        def read_payload(body):
            return json.loads(body)["data"]
        """, "read_payload('')",
      ('    return json.loads(body)["data"]', '    if not body:\n        return None\n    return json.loads(body)["data"]'),
      "from app.payload import read_payload\n\ndef test_empty():\n    assert read_payload('') is None\n",
      "from app.payload import read_payload\n\ndef test_data():\n    assert read_payload('{\"data\": 1}') == 1\n"),
    s("percent", "share", """
        def share(part, whole):
            return round(100 * part / whole, 1)
        """, "share(3, 0)",
      ("    return round(100 * part / whole, 1)", "    return round(100 * part / whole, 1) if whole else 0.0"),
      "from app.percent import share\n\ndef test_zero():\n    assert share(3, 0) == 0.0\n",
      "from app.percent import share\n\ndef test_half():\n    assert share(1, 2) == 50.0\n",
      wrong_first=("    return round(100 * part / whole, 1)", "    return 0.0")),
    s("sorting", "by_priority", """
        def by_priority(tasks):
            return sorted(tasks, key=lambda t: t.get("priority"))
        """, "by_priority([{'priority': 2}, {}])",
      ('    return sorted(tasks, key=lambda t: t.get("priority"))', '    return sorted(tasks, key=lambda t: t.get("priority", 0))'),
      "from app.sorting import by_priority\n\ndef test_missing():\n    assert by_priority([{'priority': 2}, {}]) == [{}, {'priority': 2}]\n",
      "from app.sorting import by_priority\n\ndef test_sorted():\n    assert by_priority([{'priority': 2}, {'priority': 1}])[0] == {'priority': 1}\n"),
    s("decode", "read_name", """
        def read_name(raw):
            return raw.decode("utf-8")
        """, "read_name('caf\\xe9'.encode('latin-1'))",
      ('    return raw.decode("utf-8")', '    return raw.decode("utf-8", errors="replace")'),
      "from app.decode import read_name\n\ndef test_latin1():\n    assert read_name('caf\\xe9'.encode('latin-1')).startswith('caf')\n",
      "from app.decode import read_name\n\ndef test_utf8():\n    assert read_name(b'ok') == 'ok'\n"),
    s("tags", "tag_counts", """
        def tag_counts(posts):
            counts = {}
            for post in posts:
                for tag in post["tags"]:
                    counts[tag] += 1
            return counts
        """, "tag_counts([{'tags': ['a']}])",
      ("                counts[tag] += 1", "                counts[tag] = counts.get(tag, 0) + 1"),
      "from app.tags import tag_counts\n\ndef test_one():\n    assert tag_counts([{'tags': ['a', 'a']}]) == {'a': 2}\n",
      "from app.tags import tag_counts\n\ndef test_none():\n    assert tag_counts([]) == {}\n"),
    s("inventory", "reserve", """
        STOCK = {"A": 3}

        def reserve(sku, qty):
            left = STOCK.get(sku)
            return left - qty
        """, "reserve('B', 1)",
      ("    return left - qty", "    if left is None:\n        return -qty\n    return left - qty"),
      "from app.inventory import reserve\n\ndef test_unknown():\n    assert reserve('B', 1) == -1\n",
      "from app.inventory import reserve\n\ndef test_known():\n    assert reserve('A', 1) == 2\n"),
    s("config", "timeout", """
        def timeout(settings):
            return float(settings["http"]["timeout"])
        """, "timeout({'http': {}})",
      ('    return float(settings["http"]["timeout"])', '    return float(settings.get("http", {}).get("timeout", 30))'),
      "from app.config import timeout\n\ndef test_default():\n    assert timeout({'http': {}}) == 30.0\n",
      "from app.config import timeout\n\ndef test_set():\n    assert timeout({'http': {'timeout': '5'}}) == 5.0\n"),
    s("pages", "page_count", """
        def page_count(total, per_page):
            return -(-total // per_page)
        """, "page_count(10, 0)",
      ("    return -(-total // per_page)", "    if per_page <= 0:\n        return 0\n    return -(-total // per_page)"),
      "from app.pages import page_count\n\ndef test_zero():\n    assert page_count(10, 0) == 0\n",
      "from app.pages import page_count\n\ndef test_pages():\n    assert page_count(10, 3) == 4\n",
      wrong_first=("    return -(-total // per_page)", "    return 0")),
    s("names", "initials", """
        def initials(full_name):
            parts = full_name.split()
            return parts[0][0] + parts[-1][0]
        """, "initials('')",
      ("    return parts[0][0] + parts[-1][0]", "    if not parts:\n        return ''\n    return parts[0][0] + parts[-1][0]"),
      "from app.names import initials\n\ndef test_blank():\n    assert initials('') == ''\n",
      "from app.names import initials\n\ndef test_two():\n    assert initials('Ada Lovelace') == 'AL'\n"),
    s("money", "to_cents", """
        def to_cents(amount):
            return int(amount.replace("$", "")) * 100
        """, "to_cents(12)",
      ('    return int(amount.replace("$", "")) * 100', '    return int(str(amount).replace("$", "")) * 100'),
      "from app.money import to_cents\n\ndef test_int():\n    assert to_cents(12) == 1200\n",
      "from app.money import to_cents\n\ndef test_str():\n    assert to_cents('$3') == 300\n"),
    s("dates", "year_of", """
        def year_of(record):
            return record["created"].year
        """, "year_of({'created': None})",
      ('    return record["created"].year', '    created = record["created"]\n    return created.year if created is not None else None'),
      "from app.dates import year_of\n\ndef test_none():\n    assert year_of({'created': None}) is None\n",
      "from app.dates import year_of\n\ndef test_year():\n    import datetime\n    assert year_of({'created': datetime.date(2020, 1, 1)}) == 2020\n"),
    s("store", "save", """
        import sqlite3

        def save(path, value):
            db = sqlite3.connect(path, timeout=0)
            db.execute("BEGIN EXCLUSIVE")
            lock = sqlite3.connect(path, timeout=0)
            lock.execute("BEGIN EXCLUSIVE")
            return value
        """, "save('/tmp/watcher-bench-locked.db', 1)",
      ("    return value", "    return value"), "", "",
      operational=True),
    s("keys", "charge", """
        class AuthenticationError(Exception):
            pass

        def charge(api_key, cents):
            raise AuthenticationError("invalid x-api-key")
        """, "charge('sk_live_wrong', 100)",
      ("    return value", "    return value"), "", "",
      operational=True),
]


# Scenarios whose fix needs code beyond the crashing function: a definition the bug file
# imports (the callee returns None), and a monorepo whose service runs from /app in its
# container, with a same-named file in another service that sorts first.
SCENARIOS += [
    Scenario(
        "orders", "app/orders.py", "line_total",
        "from app.units import to_cents\n\n\ndef line_total(line):\n"
        "    return to_cents(line['price']) * line['qty']\n",
        "line_total({'price': '', 'qty': 2})",
        "    return to_cents(line['price']) * line['qty']",
        "    return (to_cents(line['price']) or 0) * line['qty']",
        "from app.orders import line_total\n\ndef test_free():\n"
        "    assert line_total({'price': '', 'qty': 2}) == 0\n",
        "from app.orders import line_total\n\ndef test_line():\n"
        "    assert line_total({'price': '1.5', 'qty': 2}) == 300\n",
        extra=(("app/units.py", "def to_cents(price):\n    \"\"\"None for a free item.\"\"\"\n"
                "    if not price:\n        return None\n    return int(round(float(price) * 100))\n"),),
        needs=("def to_cents(price):",),
    ),
    Scenario(
        "invoice", "services/billing/app/invoice.py", "total_due",
        "def total_due(items):\n    return sum(i['amount'] for i in items) / len(items)\n",
        "handle([])",
        "    return sum(i['amount'] for i in items) / len(items)",
        "    if not items:\n        return 0\n    return sum(i['amount'] for i in items) / len(items)",
        "from services.billing.app.invoice import total_due\n\ndef test_empty():\n"
        "    assert total_due([]) == 0\n",
        "from services.billing.app.invoice import total_due\n\ndef test_one():\n"
        "    assert total_due([{'amount': 4}]) == 4\n",
        extra=(
            ("services/__init__.py", ""), ("services/billing/__init__.py", ""),
            ("services/billing/app/__init__.py", ""), ("services/accounts/__init__.py", ""),
            ("services/accounts/app/__init__.py", ""),
            ("services/billing/app/handlers.py",
             "from services.billing.app.invoice import total_due\n\n\ndef handle(items):\n"
             "    return {'due': total_due(items)}\n"),
            ("services/accounts/app/invoice.py", "def statement(account):\n    return []\n"),
        ),
        entry="services/billing/app/handlers.py", log_root="services/billing",
        needs=("def total_due(items):",),
    ),
]  # fmt: skip


# --- building one scenario ------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    """git with a fixed identity and no user config."""
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "d@x.org"}
    env.update(GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="d@x.org")
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return done.stdout


def build_repo(sc: Scenario, top: Path) -> Path:
    """The scenario's repository, committed and pushed to a bare origin."""
    repo, origin = top / "repo", top / "origin.git"
    files = {sc.module: sc.code, "app/__init__.py": "", **dict(sc.extra)}
    if sc.existing:
        files[f"tests/test_{sc.name}.py"] = sc.existing
    files["tests/__init__.py"] = ""
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=top)
    git("init", "-q", "-b", "main", str(repo), cwd=top)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "app", cwd=repo)
    git("remote", "add", "origin", str(origin), cwd=repo)
    git("push", "-q", "origin", "main", cwd=repo)
    return repo


def crash_log(sc: Scenario, repo: Path) -> str:
    """The real traceback of the buggy call, logged 4 times among ordinary lines and secrets."""
    module = (sc.entry or sc.module).removesuffix(".py").replace("/", ".")
    where = repo / sc.log_root if sc.log_root else repo
    shown = "/app" if sc.log_root else "/srv/app"
    code = (
        "import logging, sys\nlogging.basicConfig(format='%(asctime)s %(levelname)s %(message)s')\n"
        f"from {module} import *\ntry:\n    {sc.trigger}\nexcept Exception:\n"
        "    logging.exception('request failed')\n"
    )
    lines = []
    for n in range(4):
        lines.append(f"2026-01-0{n + 1} 10:00:00,000 INFO GET /api/{sc.name} 200")
        lines.append(f"2026-01-0{n + 1} 10:00:01,000 INFO auth header token={LOG_SECRETS[0]}")
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60
        )
        lines.append(done.stderr.rstrip().replace(str(where), shown))
        lines.append(f"2026-01-0{n + 1} 10:00:02,000 DEBUG anthropic key={LOG_SECRETS[1]}")
    return "\n".join(lines) + "\n"


def answers(sc: Scenario) -> list[dict[str, Any]]:
    """The scripted model's rounds for a scenario."""
    test = {"description": "reproduces the crash", "path": f"tests/test_{sc.name}_crash.py",
            "content": sc.test}  # fmt: skip
    base = {
        "summary": f"Handle the failing input in {sc.function}",
        "root_cause": f"{sc.function} does not handle the input in the crash log.",
        "evidence": [f"traceback ends in {sc.function}"], "confidence": 0.85,
        "fixability": "patch", "fixability_score": 0.9, "risk": "low",
        "plan": "Guard the input, add a reproduction test.",
    }  # fmt: skip
    if sc.operational:
        return [{**base, "fixability": "root_cause_only", "fixability_score": 0.1, "edits": []}]
    edit = {"path": sc.module, "search": sc.search + "\n", "replace": sc.replace + "\n",
            "rationale": "guard the input that crashed"}  # fmt: skip
    rounds = [{**base, "edits": [], "test": test}]
    if sc.wrong_first:
        wrong = {**edit, "search": sc.wrong_first[0] + "\n", "replace": sc.wrong_first[1] + "\n"}
        rounds.append({**base, "edits": [wrong], "test": test})
    rounds.append({**base, "edits": [edit], "test": test})
    return rounds


# --- running ---------------------------------------------------------------------------------


@dataclass
class Result:
    """What one scenario came to."""

    name: str
    candidate: bool = False
    recall: bool = False
    related: bool | None = None  # the scenario's `needs` in the first prompt (None: it has none)
    tests_shown: bool = False  # the module's existing tests in the first prompt
    prompt_tokens: int = 0
    applies: bool = False
    reproduced: bool = False
    verified: bool = False
    pr: bool = False
    status: str = ""
    requests: int = 0
    secrets: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def run_scenario(
    sc: Scenario, top: Path, model: AnthropicFake | None, github: GitHubFake
) -> Result:
    """Build, crash, scan, fix; measure."""
    started = time.monotonic()
    result = Result(sc.name)
    repo = build_repo(sc, top)
    log = top / "app.log"
    log.write_text(crash_log(sc, repo))
    (top / "w.toml").write_text(
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{log}"\nread_from = "beginning"\n'
        f'[autofix]\nrepo_path = "{repo}"\ngithub_repo = "acme/app"\n'
        f'github_api_url = "{github.url}"\noutput_dir = "{top / "out"}"\nmin_occurrences = 2\n'
        f'verify_command = "{sys.executable} -m pytest -q -p no:cacheprovider"\n'
        'draft = true\nrepair_rounds = 2\n'
    )
    config = load_config(top / "w.toml")
    scanned = await scan(config, list(config.sources))
    groups: list[ErrorGroup] = scanned.groups
    before = len(model.messages) if model is not None else 0
    if model is not None:
        model.script(*(tool_use(a) for a in answers(sc)), repeat_last=True)
    with Store(":memory:") as store:
        fixer = pipeline(config, store, github, model)
        try:
            chosen = await asyncio.to_thread(fixer.candidates, groups)
            result.candidate = bool(chosen)
            fixes = [await fixer.run_one(g) for g in chosen[:1]]
        finally:
            await fixer.aclose()
    if model is not None:
        sent = model.messages[before:]
        result.requests = len(sent)
        if sent:
            first = json.dumps(sent[0].body)
            result.recall = f"def {sc.function}" in first
            if sc.needs:
                result.related = all(json.dumps(n)[1:-1] in first for n in sc.needs)
            first_test = next((ln for ln in sc.existing.splitlines() if ln.startswith("def ")), "")
            result.tests_shown = bool(first_test) and json.dumps(first_test)[1:-1] in first
            result.prompt_tokens = len(first) // 4
        texts = [r.text for r in sent] + github.bodies()
        result.secrets = [
            kind
            for secret in (*LOG_SECRETS, TOKEN)
            for kind, form in encodings(secret)
            if any(form in text for text in texts)
        ]
    for fix in fixes:
        verify = fix.details.get("verify") or {}
        result.status = fix.status
        result.applies = bool(fix.diff)
        result.reproduced = verify.get("reproduced") is True
        result.verified = verify.get("verified") is True
        result.pr = fix.status == "pr_open"
    result.seconds = time.monotonic() - started
    return result


def pipeline(config: Any, store: Store, github: GitHubFake, model: AnthropicFake | None) -> FixPipeline:
    """The real pipeline pointed at the fakes (or the real API when `model` is None)."""
    s = config.autofix
    redactor = Redactor()
    budget = TokenBudget(10**9, 10**6)
    analyzer = Analyzer(
        model=s.model, api_key=API_KEY if model else None, base_url=model.url if model else None,
        max_retries=0, budget=budget, redact=redactor.redact,
    )  # fmt: skip

    def pulls() -> GitHub:
        return GitHub("acme/app", token=TOKEN, base_url=github.url, throttle=False)

    def tree(group: ErrorGroup) -> Worktree:
        return Worktree(
            s.repo_path, "main", "origin", category=group.category, fix_id=group.id,
            token=TOKEN, environ={**os.environ, **GIT_ENV},
        )  # fmt: skip

    return FixPipeline(
        s, store, analyzer=analyzer, github=pulls, worktree=tree, redactor=redactor,
        budget=budget,
    )  # fmt: skip


def rate(results: list[Result], attr: str, among: list[Result] | None = None) -> str:
    pool = results if among is None else among
    hits = sum(bool(getattr(r, attr)) for r in pool)
    return f"{hits}/{len(pool)} ({100 * hits / max(len(pool), 1):.0f} %)"


async def main(args: argparse.Namespace) -> int:
    scenarios = [sc for sc in SCENARIOS if not args.only or sc.name in args.only]
    github = GitHubFake("acme/app").start()
    keep = Path(args.keep) if args.keep else None
    results: list[Result] = []
    try:
        async with AnthropicFake.running() as fake:
            model = None if args.real else fake
            for sc in scenarios:
                top = Path(tempfile.mkdtemp(prefix=f"fix-eval-{sc.name}-", dir=keep))
                try:
                    result = await run_scenario(sc, top, model, github)
                finally:
                    if keep is None:
                        shutil.rmtree(top, ignore_errors=True)
                results.append(result)
                print(
                    f"{sc.name:<11} candidate={result.candidate!s:<5} recall={result.recall!s:<5} "
                    f"related={result.related!s:<5} tests={result.tests_shown!s:<5} "
                    f"tokens={result.prompt_tokens:<5} rounds={result.requests} "
                    f"status={result.status:<9} reproduced={result.reproduced!s:<5} "
                    f"verified={result.verified!s:<5} pr={result.pr!s:<5} "
                    f"secrets={len(result.secrets)} {result.seconds:.1f}s",
                    flush=True,
                )
    finally:
        github.stop()
    code_bugs = [r for r, sc in zip(results, scenarios, strict=True) if not sc.operational]
    ops = [r for r, sc in zip(results, scenarios, strict=True) if sc.operational]
    asked = [r for r in results if r.requests]
    print()
    print(f"scenarios: {len(results)} ({len(code_bugs)} code bugs, {len(ops)} operational)")
    print(f"context recall (bug function in the prompt): {rate(results, 'recall', asked)}")
    needing = [r for r in asked if r.related is not None]
    print(f"related code recall (imported definition, monorepo service file): "
          f"{rate(needing, 'related')}")  # fmt: skip
    with_tests = [r for r, sc in zip(results, scenarios, strict=True) if sc.existing and r.requests]
    print(f"module tests in the prompt: {rate(with_tests, 'tests_shown')}")
    tokens = [r.prompt_tokens for r in asked]
    print(f"prompt tokens (first request, ~chars/4): mean {sum(tokens) // max(len(tokens), 1)}, "
          f"max {max(tokens, default=0)}")  # fmt: skip
    print(f"patch applies (code bugs): {rate(code_bugs, 'applies')}")
    print(f"reproduction test fails before the fix (code bugs): {rate(code_bugs, 'reproduced')}")
    print(f"verify passes with the fix (code bugs): {rate(code_bugs, 'verified')}")
    print(f"PRs opened: {sum(r.pr for r in results)} (operational: {sum(r.pr for r in ops)})")
    print(f"model requests: {sum(r.requests for r in results)}")
    leaks = [(r.name, k) for r in results for k in r.secrets]
    print(f"secrets found in any request: {len(leaks)} {leaks if leaks else ''}".rstrip())
    return 1 if leaks else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="the real API (ANTHROPIC_API_KEY)")
    parser.add_argument("--only", nargs="*", help="scenario names")
    parser.add_argument("--keep", help="keep each scenario's directory under this one")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
