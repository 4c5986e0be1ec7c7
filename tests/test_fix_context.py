"""build_context: frames of deploy paths mapped onto a checkout, bounded, never outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.fix.context import (
    MAX_FILE_BYTES,
    FileExcerpt,
    RepoIndex,
    build_context,
    ordered_frames,
)
from watcher.model import ErrorGroup, Frame, Sample

PAYMENTS = "".join(f"line {n} of payments\n" for n in range(1, 201))


def write(root: Path, rel: str, text: str = "x = 1\n") -> Path:
    """Create `rel` under root with text, making parent dirs."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def group(*frames: Frame, template: str = "ZeroDivisionError: division by zero") -> ErrorGroup:
    """A trace group with the given frames (outermost first, as the parser orders them)."""
    return ErrorGroup(
        id="g1",
        kind="trace",
        template=template,
        category="internal_error",
        severity="high",
        fixable=True,
        suggested_fix="check the divisor",
        exception_type="ZeroDivisionError",
        top_frame=frames[-1] if frames else None,
        frames=list(frames),
        count=42,
        first_seen=1_700_000_000.0,
        last_seen=1_700_003_600.0,
        sources={"app": 40, "worker": 2},
        samples=[Sample(1_700_000_000.0 + i, "app", f"sample {i} text", line=i) for i in range(5)],
        window_counts={"1m": 3, "5m": 9, "1h": 40},
        trend="rising",
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with Python, Java and Lambda-style files."""
    root = tmp_path / "repo"
    write(root, "src/payments.py", PAYMENTS)
    write(root, "lib/vendor/payments.py", "not this one\n")
    write(root, "app.py", "def handler(event, ctx):\n    return 1 / 0\n")
    write(root, "tests/app.py", "# a test helper with the same name\n")
    write(root, "src/main/java/com/acme/Foo.java", "class Foo {\n  void bar() {}\n}\n")
    write(root, "node_modules/left-pad/index.js", "module.exports = 1\n")
    return root


def test_maps_deploy_paths_to_checkout_files_by_longest_suffix(repo: Path) -> None:
    """/app/src/x.py, /var/task/app.py and com/acme/Foo.java find their checkout files."""
    index = RepoIndex.build(repo)
    assert str(index.match("/app/src/payments.py")) == "src/payments.py"
    assert str(index.match("/srv/lib/vendor/payments.py")) == "lib/vendor/payments.py"
    assert str(index.match("/var/task/app.py")) == "app.py"  # tie: the shorter path wins
    assert str(index.match("com/acme/Foo.java")) == "src/main/java/com/acme/Foo.java"
    assert str(index.match("C:\\build\\src\\payments.py")) == "src/payments.py"
    assert index.match("/app/src/nothing.py") is None
    assert index.match("<frozen runpy>") is None


def test_tool_directories_are_not_indexed(repo: Path) -> None:
    """node_modules (and .git, .venv, …) are never walked."""
    assert RepoIndex.build(repo).match("/app/node_modules/left-pad/index.js") is None


def test_excerpts_come_in_app_innermost_first_with_line_numbers(repo: Path) -> None:
    """The innermost in-app frame's file comes first; excerpts carry exact lines and numbers."""
    g = group(
        Frame("/var/task/app.py", 2, "handler"),
        Frame("/usr/lib/python3.11/site-packages/requests/api.py", 10, "get", in_app=False),
        Frame("/app/src/payments.py", 100, "total"),
    )
    ctx = build_context(g, repo, lines_around=3)
    assert [f.path for f in ctx.files] == ["src/payments.py", "app.py"]
    first = ctx.files[0]
    assert (first.start_line, first.end_line) == (97, 103)
    assert first.text.splitlines()[3] == "line 100 of payments"
    assert first.numbered().splitlines()[3] == "100 | line 100 of payments"
    assert ctx.missing == []  # a library frame that is not in the checkout is not "missing"


def test_ordered_frames_puts_in_app_first_innermost_first() -> None:
    """Frames stored outermost-first come back in-app first, each kind innermost first."""
    a, lib, b = (
        Frame("a.py", 1, "a"),
        Frame("/x/site-packages/l.py", 2, "l", False),
        Frame("b.py", 3, "b"),
    )
    assert ordered_frames(group(a, lib, b)) == [b, a, lib]


def test_missing_frame_files_are_listed(repo: Path) -> None:
    """An in-app frame whose file is not in the checkout is named in `missing`."""
    g = group(Frame("/app/src/gone.py", 3, "f"), Frame("/app/src/payments.py", 5, "total"))
    ctx = build_context(g, repo)
    assert ctx.missing == ["/app/src/gone.py"]
    assert [f.path for f in ctx.files] == ["src/payments.py"]


def test_total_bytes_are_bounded_and_outer_frames_dropped_first(tmp_path: Path) -> None:
    """Over the byte budget, windows narrow and the outermost frames are the ones dropped."""
    root = tmp_path / "repo"
    for name in ("inner", "middle", "outer"):
        write(
            root,
            f"src/{name}.py",
            "".join(f"{name} {n:04d} " + "x" * 80 + "\n" for n in range(400)),
        )
    g = group(
        Frame("/app/src/outer.py", 200, "o"),
        Frame("/app/src/middle.py", 200, "m"),
        Frame("/app/src/inner.py", 200, "i"),
    )
    ctx = build_context(g, root, max_bytes=9_000, lines_around=40)
    assert ctx.code_bytes <= 9_000
    assert ctx.files[0].path == "src/inner.py"
    assert ctx.files[0].end_line - ctx.files[0].start_line == 80  # the innermost keeps 40 around
    assert "src/outer.py:200" in ctx.dropped
    assert all(f.path != "src/outer.py" for f in ctx.files)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_bytes=st.integers(0, 20_000), around=st.integers(0, 60))
def test_code_bytes_never_exceed_max_bytes(repo: Path, max_bytes: int, around: int) -> None:
    """Whatever the budget and window, the excerpt text stays within max_bytes."""
    g = group(Frame("/app/app.py", 1, "h"), Frame("/app/src/payments.py", 150, "total"))
    ctx = build_context(g, repo, max_bytes=max_bytes, lines_around=around)
    assert ctx.code_bytes <= max_bytes


def test_dot_dot_in_a_frame_path_never_reads_outside(tmp_path: Path) -> None:
    """A frame `../../etc/passwd` is matched inside the checkout only, never joined onto it."""
    root = tmp_path / "repo"
    write(root, "src/payments.py", PAYMENTS)
    (tmp_path / "secret.txt").write_text("TOP SECRET\n")
    g = group(
        Frame("../../etc/passwd", 1, "x"),
        Frame("/app/src/../../secret.txt", 1, "y"),
        Frame("../secret.txt", 1, "z"),
    )
    ctx = build_context(g, root)
    assert ctx.files == []
    assert sorted(ctx.missing) == ["../../etc/passwd", "../secret.txt", "/app/src/../../secret.txt"]


def test_symlinks_pointing_outside_are_not_read(tmp_path: Path) -> None:
    """A file symlink to /etc/passwd and a directory symlink out of the checkout are skipped."""
    root = tmp_path / "repo"
    write(root, "src/payments.py", PAYMENTS)
    outside = tmp_path / "outside"
    write(outside, "leak.py", "LEAKED = True\n")
    os.symlink("/etc/passwd", root / "src" / "passwd.py")
    os.symlink(outside, root / "linked")
    os.symlink("payments.py", root / "src" / "alias.py")  # inside: fine
    g = group(
        Frame("/app/src/passwd.py", 1, "a"),
        Frame("/app/linked/leak.py", 1, "b"),
        Frame("/app/src/alias.py", 1, "c"),
    )
    ctx = build_context(g, root)
    texts = "".join(f.text for f in ctx.files)
    assert "root:" not in texts and "LEAKED" not in texts
    assert [f.path for f in ctx.files] == ["src/alias.py"]
    assert set(ctx.missing) == {"/app/src/passwd.py", "/app/linked/leak.py"}


def test_binary_and_oversized_files_are_skipped(tmp_path: Path) -> None:
    """Files with NUL bytes or over 1 MB count as missing, not as excerpts."""
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "blob.py").write_bytes(b"x = 1\n\0\0binary")
    write(root, "src/huge.py", "#" * (MAX_FILE_BYTES + 1))
    ctx = build_context(
        group(Frame("/app/src/huge.py", 1, "h"), Frame("/a/src/blob.py", 1, "b")), root
    )
    assert ctx.files == []
    assert set(ctx.missing) == {"/app/src/huge.py", "/a/src/blob.py"}


def test_frame_without_line_shows_the_head_of_the_file(repo: Path) -> None:
    """No line number: the first lines of the file, within the window size."""
    ctx = build_context(group(Frame("/app/src/payments.py", None, "total")), repo, lines_around=2)
    assert [(f.start_line, f.end_line) for f in ctx.files] == [(1, 5)]


def test_files_named_in_the_message_are_included(repo: Path) -> None:
    """A template-only group that names a file gets that file, after any frame files."""
    write(repo, "config/settings.yaml", "timeout: 0\n")
    g = group(template="invalid value in config/settings.yaml: timeout must be > 0")
    ctx = build_context(g, repo)
    assert [f.path for f in ctx.files] == ["config/settings.yaml"]
    assert ctx.missing == []


def test_overlapping_frames_in_one_file_merge_into_one_excerpt(repo: Path) -> None:
    """Two frames a few lines apart in the same file give one excerpt, counted once."""
    g = group(Frame("/app/src/payments.py", 50, "a"), Frame("/app/src/payments.py", 54, "b"))
    ctx = build_context(g, repo, lines_around=3)
    assert [(f.start_line, f.end_line) for f in ctx.files] == [(47, 57)]


def test_evidence_holds_the_groups_facts(repo: Path) -> None:
    """Counts, windows, times, classification, the exception, one full sample and the
    distinct failing messages of all samples (not three copies of one trace)."""
    ev = build_context(group(Frame("/app/src/payments.py", 5, "total")), repo).evidence
    assert ev["count"] == 42 and ev["window_counts"] == {"1m": 3, "5m": 9, "1h": 40}
    assert ev["first_seen"] == "2023-11-14T22:13:20Z" and ev["last_seen"] == "2023-11-14T23:13:20Z"
    assert (ev["category"], ev["severity"], ev["trend"]) == ("internal_error", "high", "rising")
    assert ev["suggested_fix"] == "check the divisor"
    assert ev["exception_type"] == "ZeroDivisionError"
    assert ev["template"] == "ZeroDivisionError: division by zero"
    assert [s["text"] for s in ev["samples"]] == ["sample 0 text"]
    assert ev["distinct_messages"] == [f"sample {n} text" for n in range(5)]
    assert ev["frames"] == [
        {"file": "/app/src/payments.py", "line": 5, "function": "total", "in_app": True}
    ]


def test_the_whole_enclosing_function_is_shown(tmp_path: Path) -> None:
    """A frame deep in a long function gets the function from its `def` (and the lines that
    build the failing value), not a window that starts below the def."""
    body = "".join(f"    step_{n} = {n}\n" for n in range(60))
    code = "import os\n\n\ndef settle(order):\n    rate = order['rate']\n"
    code += f"{body}    return 1 / rate\n\n\ndef other():\n    return 2\n"
    (tmp_path / "app").mkdir()
    (tmp_path / "app/billing.py").write_text(code)
    failing = code.splitlines().index("    return 1 / rate") + 1
    ctx = build_context(group(Frame("/srv/app/billing.py", failing, "settle")), tmp_path)
    [excerpt] = ctx.files
    assert excerpt.start_line == 4 and excerpt.text.startswith("def settle(order):\n    rate =")
    assert failing - 40 > 4  # the old ±40-line window started below the def


def test_numbered_pads_line_numbers() -> None:
    """Line numbers are right-aligned to the widest one, then " | "."""
    excerpt = FileExcerpt("a.py", 9, 11, "a\nb\nc\n")
    assert excerpt.numbered() == " 9 | a\n10 | b\n11 | c"


# --- related code: imported definitions, the module's tests, monorepo services -------------

ORDERS = (
    "from app.util import parse_qty, Money\n"
    "from .pricing import unit_price\n"
    "import json\n\n\n"
    "def total(line):\n"
    "    return parse_qty(line['qty']) * unit_price(line['sku'])\n"
)
UTIL = (
    "import re\n\n\ndef unrelated():\n    return 0\n\n\n"
    "def parse_qty(text):\n    return int(text)\n\n\n"
    "class Money:\n    cents: int = 0\n"
)


@pytest.fixture
def app_repo(tmp_path: Path) -> Path:
    """A src-layout app whose orders module imports a helper, a pricing module and json."""
    root = tmp_path / "repo"
    write(root, "src/app/__init__.py", "")
    write(root, "src/app/orders.py", ORDERS)
    write(root, "src/app/util.py", UTIL)
    write(root, "src/app/pricing.py", "def unit_price(sku):\n    return PRICES[sku]\n")
    write(root, "tests/test_orders.py", "from app.orders import total\n\n\ndef test_total():\n"
          "    assert total({'qty': '2', 'sku': 'a'}) == 2\n")  # fmt: skip
    write(root, "tests/test_util.py", "def test_nothing():\n    pass\n")
    return root


def test_definitions_the_bug_file_imports_from_the_app_are_shown(app_repo: Path) -> None:
    """The def/class of each name the bug file imports from the checkout (absolute import in a
    src layout, relative import) is shown — and only those: no other function of the module,
    nothing for a standard-library import."""
    ctx = build_context(group(Frame("/srv/app/orders.py", 7, "total", True)), app_repo)
    shown: dict[str, str] = {}
    for excerpt in ctx.files:
        shown[excerpt.path] = shown.get(excerpt.path, "") + excerpt.text
    assert "def parse_qty(text):\n    return int(text)\n" in shown["src/app/util.py"]
    assert "class Money:" in shown["src/app/util.py"]
    assert "def unrelated" not in shown["src/app/util.py"]
    assert "def unit_price(sku)" in shown["src/app/pricing.py"]
    assert not any(path.endswith("json.py") for path in shown)


def test_the_tests_of_the_touched_module_are_shown(app_repo: Path) -> None:
    """tests/test_orders.py (the bug file's tests) is in the context; another module's are not."""
    ctx = build_context(group(Frame("/srv/app/orders.py", 7, "total", True)), app_repo)
    paths = [f.path for f in ctx.files]
    assert "tests/test_orders.py" in paths and "tests/test_util.py" not in paths
    assert paths[0] == "src/app/orders.py"  # the frame still comes first


def test_related_code_yields_to_the_frames_under_a_tight_budget(app_repo: Path) -> None:
    """Imported definitions and tests are dropped before the failing frame's own code."""
    ctx = build_context(
        group(Frame("/srv/app/orders.py", 7, "total", True)), app_repo, max_bytes=len(ORDERS)
    )
    assert [f.path for f in ctx.files] == ["src/app/orders.py"]
    assert ctx.code_bytes <= len(ORDERS)


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """Two services with files of the same names; users has a handlers.py billing lacks."""
    root = tmp_path / "repo"
    for service in ("billing", "users"):
        write(root, f"services/{service}/api.py", f"def charge():\n    return '{service}'\n")
    write(root, "services/users/handlers.py", "def handle():\n    return charge()\n")
    write(root, "services/billing/models.py", "x = 1\n")
    return root


def test_monorepo_frame_matched_by_service_path_not_basename(monorepo: Path) -> None:
    """A container path naming the service (`/app/services/users/api.py`) finds that service's
    file, though billing's api.py sorts first."""
    ctx = build_context(group(Frame("/app/services/users/api.py", 2, "charge", True)), monorepo)
    assert ctx.files[0].path == "services/users/api.py"


def test_monorepo_service_root_learned_from_the_traces_other_frames(monorepo: Path) -> None:
    """Inside the container the service's code sits at /app: `/app/api.py` is ambiguous, but
    the trace's `/app/handlers.py` exists only under services/users, so users' api.py is the
    one shown (billing's would be, by name order)."""
    frames = (Frame("/app/handlers.py", 2, "handle", True), Frame("/app/api.py", 2, "charge", True))
    ctx = build_context(group(*frames), monorepo)
    paths = [f.path for f in ctx.files][:2]
    assert paths == ["services/users/api.py", "services/users/handlers.py"]


def test_monorepo_service_paths_config_maps_a_source_to_its_directory(monorepo: Path) -> None:
    """[autofix] service_paths maps the group's source to its directory when nothing else can
    tell the services apart."""
    g = group(Frame("/app/api.py", 2, "charge", True))
    assert build_context(g, monorepo).files[0].path == "services/billing/api.py"  # name order
    ctx = build_context(g, monorepo, service_paths={"worker": "services/users"})
    assert ctx.files[0].path == "services/users/api.py"
