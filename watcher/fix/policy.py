"""What a model-written patch may touch and add: the path denylist and the content rules.

Everything here is pure: the guard in patch.py feeds it paths and text and collects the reasons.
The rules err on the side of refusing: a refused fix costs a human a look at the report, an
accepted malicious one costs much more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# gitignore-like globs (see `path_matches`): CI, container and deploy config, packaging and lock
# files, environment and key files. Editing any of these changes how code is built, shipped or
# trusted, which is never the job of a fix for a runtime error.
DEFAULT_DENYLIST: tuple[str, ...] = (
    ".github/**",
    ".gitlab-ci.yml",
    ".gitlab/**",
    ".circleci/**",
    "Jenkinsfile",
    ".travis.yml",
    "azure-pipelines.yml",
    ".buildkite/**",
    "bitbucket-pipelines.yml",
    ".pre-commit-config.yaml",
    ".pre-commit-hooks.yaml",
    ".husky/**",
    ".devcontainer/**",
    ".vscode/**",
    ".idea/**",
    ".envrc",
    "Makefile",
    "GNUmakefile",
    "*.mk",
    "justfile",
    "Taskfile.y*ml",
    "Rakefile",
    "conftest.py",
    "pytest.ini",
    "tox.ini",
    "noxfile.py",
    "sitecustomize.py",
    "usercustomize.py",
    "*.pth",
    ".bashrc",
    ".profile",
    "CODEOWNERS",
    ".gitmodules",
    ".gitattributes",
    "Dockerfile*",
    "*.dockerfile",
    "docker-compose*.y*ml",
    "compose*.y*ml",
    "deploy/**",
    "k8s/**",
    "helm/**",
    "terraform/**",
    "*.tf",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "MANIFEST.in",
    "requirements*.txt",
    "constraints*.txt",
    "Pipfile*",
    "*.lock",
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    ".npmrc",
    ".pypirc",
    "go.mod",
    "go.sum",
    "Cargo.toml",
    "Cargo.lock",
    "Gemfile*",
    "*.gemspec",
    ".env*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keystore",
    "*.jks",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "secrets/**",
    ".netrc",
)

# Never editable whatever the configured denylist says: git's own metadata (hooks run code).
HARD_DENYLIST: tuple[str, ...] = (".git", ".git/**", "**/.git", "**/.git/**")

# Calls that run code or commands; a fix may keep the ones a file already has, never add one.
DANGEROUS_CALLS: dict[str, re.Pattern[str]] = {
    "eval(": re.compile(r"\beval\s*\("),
    "exec(": re.compile(r"\bexec\s*\("),
    "subprocess": re.compile(r"\bsubprocess\b"),
    "os.system": re.compile(r"\bos\s*\.\s*system\s*\("),
    "os.popen": re.compile(r"\bos\s*\.\s*popen\s*\("),
    "os.exec*/os.spawn*": re.compile(r"\bos\s*\.\s*(?:exec|spawn|posix_spawn)\w*\s*\("),
    "pty.spawn": re.compile(r"\bpty\s*\.\s*spawn\s*\("),
    "__import__": re.compile(r"\b__import__\s*\("),
    "compile(": re.compile(r"(?<![\w.])compile\s*\("),
    "pickle/marshal loads": re.compile(r"\b(?:pickle|marshal|dill|cloudpickle)\s*\.\s*loads?\s*\("),
    "child_process": re.compile(r"\bchild_process\b"),
    "new Function(": re.compile(r"\bnew\s+Function\s*\("),
    "Runtime.getRuntime().exec": re.compile(r"\bRuntime\s*\.\s*getRuntime\s*\(\s*\)\s*\.\s*exec\b"),
    "ProcessBuilder": re.compile(r"\bProcessBuilder\b"),
    "shell_exec/system": re.compile(r"\b(?:shell_exec|passthru|proc_open)\s*\("),
    # reading the process environment or /proc: where the daemon's secrets live
    "os.environ/getenv": re.compile(r"\bos\s*\.\s*(?:environ|getenv|environb)\b|\bgetenv\s*\("),
    "process.env": re.compile(r"\bprocess\s*\.\s*env\b|\bSystem\s*\.\s*getenv\b"),
    "/proc": re.compile(r"""["'`/]proc/|/proc\b"""),
    "builtins access": re.compile(
        r"\b__builtins__\b|\bbuiltins\b|\b__globals__\b|\b__subclasses__\b"
    ),
    "getattr on a module": re.compile(r"\bgetattr\s*\(\s*(?:os|sys|importlib|builtins)\b"),
    "ctypes": re.compile(r"\bctypes\b"),
    "socket": re.compile(r"\bsocket\s*\.\s*(?:socket|create_connection)\b|\bimport\s+socket\b"),
}
# importlib.import_module / __import__ with anything but a string literal: a built name
_DYNAMIC_IMPORT = re.compile(r"""\b(?:import_module|__import__)\s*\(\s*(?!["'][\w.]+["']\s*[,)])""")

_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^\s/'\"`<>()\[\]{}\\]+)")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# A quoted string that is nothing but a host name with a common public suffix: "evil.example.com".
_TLDS = "com|net|org|io|dev|app|ai|co|xyz|ru|cn|info|biz|me|sh|cc|tk|top|site|online|link"
_QUOTED_HOST = re.compile(rf"""["'`]((?:[a-zA-Z0-9-]+\.)+(?:{_TLDS}))["'`]""")
_BASE64_RUN = r"[A-Za-z0-9+/_-]{%d,}={0,2}"
_ESCAPED_BYTES = r"(?:\\x[0-9a-fA-F]{2}){%d,}"


@dataclass(frozen=True, slots=True)
class Policy:
    """The limits a patch must respect. Defaults are the safe ones; config may only tighten
    them or add patterns through `with_extra_denylist`."""

    denylist: tuple[str, ...] = DEFAULT_DENYLIST
    max_files: int = 5
    max_changed_lines: int = 200
    max_blob_chars: int = 200
    allow_new_files: bool = True

    def with_extra_denylist(self, patterns: tuple[str, ...]) -> Policy:
        """A copy that also refuses `patterns` (the defaults stay)."""
        return Policy(
            denylist=self.denylist + tuple(patterns),
            max_files=self.max_files,
            max_changed_lines=self.max_changed_lines,
            max_blob_chars=self.max_blob_chars,
            allow_new_files=self.allow_new_files,
        )

    def denied_by(self, rel_path: str) -> str | None:
        """The first deny pattern `rel_path` (POSIX, relative to the repo) matches, else None."""
        for pattern in HARD_DENYLIST + self.denylist:
            if path_matches(rel_path, pattern):
                return pattern
        return None


def path_matches(rel_path: str, pattern: str) -> bool:
    """gitignore-style match, case-insensitive (so `.GITHUB/` on a case-folding disk is caught).

    A pattern without `/` matches the file name at any depth (`*.pem`, `Dockerfile*`); one with
    `/` is anchored at the repo root (`deploy/**`); `**` spans directories, `*` and `?` do not.
    """
    return _compile(pattern).fullmatch(rel_path) is not None


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    anchored = "/" in pattern.rstrip("/")
    body = _glob_to_regex(pattern.strip("/"))
    return re.compile(body if anchored else f"(?:.*/)?{body}", re.IGNORECASE | re.DOTALL)


def _glob_to_regex(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


_TEST_FILE = re.compile(
    r"(?:^|/)(?:tests?|__tests__|spec)/|(?:^|/)test_[^/]*$|_test\.\w+$|\.(?:test|spec)\.\w+$"
    r"|Tests?\.\w+$",
    re.IGNORECASE,
)
_CHECKS = re.compile(
    r"\bassert\w*\b|\bdef test\w*|\bexpect\s*\(|\b(?:it|test)\s*\(|@Test\b|\bt\.(?:Error|Fatal)"
    r"|\bself\.assert\w+|\bpytest\.raises\b"
)
_SKIPS = re.compile(r"\bskip\w*\b|\bxfail\b|\.only\s*\(|@Disabled\b|@Ignore\b", re.IGNORECASE)


def is_test_file(path: str) -> bool:
    """Whether `path` (relative, POSIX) looks like a test file."""
    return _TEST_FILE.search(path) is not None


def weakens_test(path: str, old: str, new: str) -> bool:
    """An edit of an existing test file that removes checks or adds skips: refused, since a
    fix must not pass by editing the tests that catch it."""
    if not old or not is_test_file(path):
        return False
    fewer = len(_CHECKS.findall(new)) < len(_CHECKS.findall(old))
    return fewer or len(_SKIPS.findall(new)) > len(_SKIPS.findall(old))


def content_problems(path: str, old: str, new: str, added: str, *, max_blob: int) -> list[str]:
    """Reasons the change from `old` to `new` (whose added lines are `added`) is refused."""
    reasons = [
        f"{path}: adds a link to {host}, not already in the file" for host in new_hosts(old, added)
    ]
    if has_blob(added, max_blob):
        reasons.append(f"{path}: adds an encoded blob of {max_blob}+ characters")
    for name in new_dangerous_calls(old, new):
        reasons.append(f"{path}: adds a new {name} call")
    if len(_DYNAMIC_IMPORT.findall(new)) > len(_DYNAMIC_IMPORT.findall(old)):
        reasons.append(f"{path}: adds an import of a computed module name")
    if weakens_test(path, old, new):
        reasons.append(f"{path}: deletes or weakens a test (fewer checks, or a new skip)")
    return reasons


def new_hosts(old: str, added: str) -> list[str]:
    """Hosts named in `added` (URLs, IP literals, quoted host names) that `old` never mentions."""
    found: list[str] = []
    hosts = [m.group(2).rsplit("@", 1)[-1] for m in _URL.finditer(added)]
    hosts += _IPV4.findall(added) + _QUOTED_HOST.findall(added)
    lowered = old.lower()
    for host in hosts:
        name = host.split(":", 1)[0].lower() if host.count(":") == 1 else host.lower()
        if name and name not in lowered and name not in found:
            found.append(name[:80])
    return found


def has_blob(added: str, max_blob: int) -> bool:
    """True when `added` holds a base64/hex run or a `\\xNN` escape run of `max_blob`+ chars."""
    if re.search(_BASE64_RUN % max_blob, added):
        return True
    return re.search(_ESCAPED_BYTES % max(1, max_blob // 4), added) is not None


def new_dangerous_calls(old: str, new: str) -> list[str]:
    """Names of code-running calls `new` has more of than `old` (a count, so a second is new)."""
    return [
        name
        for name, pattern in DANGEROUS_CALLS.items()
        if len(pattern.findall(new)) > len(pattern.findall(old))
    ]
