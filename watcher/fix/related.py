"""Code the model needs beside the failing frames: what the bug file imports, and its tests.

- Imported definitions: a Python bug file is parsed (`ast`, never executed); each
  `from X import name` / `import X` whose module is a file of this checkout (absolute, relative,
  `src/` layouts: matched by path suffix) contributes the `def`/`class` of the imported names —
  the callee whose contract the crash broke is often in another module.
- Tests of the touched module: `tests/test_payments.py`, `payments_test.py`, `payments.test.ts`,
  `PaymentsTest.java`, `payments_test.go` — nearest to the bug file first — so the model writes
  its reproduction test in the suite's style and sees what must keep passing.

Pure functions over file text and the checkout index; `context.build_context` calls them and
fits the spans into its byte budget after the frames.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_DEFINITIONS = 8  # imported definitions shown per bug file
MAX_DEFINITION_LINES = 80
MAX_TEST_FILES = 2
MAX_TEST_LINES = 80  # the head of a test file: its imports, fixtures and first tests


@dataclass(frozen=True, slots=True)
class Span:
    """Lines `first`..`last` (1-based, inclusive) of a checkout file, and why it is shown."""

    path: PurePosixPath
    first: int
    last: int
    why: str


Resolve = Callable[[str], PurePosixPath | None]  # a repo-relative path suffix -> a checkout file
Read = Callable[[PurePosixPath], list[str] | None]


def imported_definitions(
    bug: PurePosixPath, source: str, resolve: Resolve, read: Read
) -> list[Span]:
    """The definitions `bug` (Python source `source`) imports from files of this checkout."""
    spans: list[Span] = []
    for module_path, names in _imports(bug, source):
        target = resolve(module_path + ".py") or resolve(module_path + "/__init__.py")
        if target is None or target == bug:
            continue
        lines = read(target)
        if lines is None:
            continue
        spans += _definitions(target, "".join(lines), names, f"imported by {bug}")
        if len(spans) >= MAX_DEFINITIONS:
            break
    return spans[:MAX_DEFINITIONS]


def _imports(bug: PurePosixPath, source: str) -> Iterator[tuple[str, set[str]]]:
    """(module path "a/b/c", the names imported from it) per `from … import …`. A module
    imported whole (`import a.b`) names nothing to look up: its uses are too many to guess."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _module_path(bug, node.module or "", node.level)
            if base is None:
                continue
            if base:
                yield base, {alias.name for alias in node.names}


def _module_path(bug: PurePosixPath, module: str, level: int) -> str | None:
    if level == 0:
        return module.replace(".", "/")
    parent = bug.parent
    for _ in range(level - 1):
        if parent == parent.parent:
            return None
        parent = parent.parent
    tail = module.replace(".", "/")
    joined = f"{parent}/{tail}" if tail else str(parent)
    return joined.removeprefix("./").removeprefix(".")


def _definitions(path: PurePosixPath, text: str, names: set[str], why: str) -> list[Span]:
    """Top-level defs/classes of `path` named in `names` (`*`: all of them)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    spans = []
    for node in tree.body:
        kinds = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        if isinstance(node, kinds) and (node.name in names or "*" in names):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            last = min(node.end_lineno or node.lineno, first + MAX_DEFINITION_LINES - 1)
            spans.append(Span(path, first, last, why))
    return spans


def conventional_test_names(bug: PurePosixPath) -> tuple[str, ...]:
    """File names the tests of `bug` conventionally have, by its language."""
    stem, suffix = bug.stem, bug.suffix
    if suffix == ".py":
        return (f"test_{stem}.py", f"{stem}_test.py")
    if suffix in (".js", ".ts", ".jsx", ".tsx", ".mjs", ".cjs"):
        exts = (suffix, ".ts", ".js")
        return tuple(f"{stem}.{kind}{ext}" for kind in ("test", "spec") for ext in exts)
    if suffix == ".go":
        return (f"{stem}_test.go",)
    if suffix in (".java", ".kt", ".scala"):
        return (f"{stem}Test{suffix}", f"{stem}Tests{suffix}")
    if suffix == ".rb":
        return (f"{stem}_spec.rb", f"test_{stem}.rb")
    return ()


def module_tests(
    bug: PurePosixPath, by_name: dict[str, list[PurePosixPath]], read: Read
) -> list[Span]:
    """The heads of the test files of `bug`, those sharing most of its directories first."""
    names = dict.fromkeys(conventional_test_names(bug))
    found = [path for name in names for path in by_name.get(name, ())]
    found.sort(key=lambda p: (-_shared_prefix(p.parts, bug.parts), len(p.parts), str(p)))
    spans = []
    for path in found[:MAX_TEST_FILES]:
        lines = read(path)
        if lines:
            spans.append(Span(path, 1, min(len(lines), MAX_TEST_LINES), f"tests of {bug}"))
    return spans


def _shared_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n
