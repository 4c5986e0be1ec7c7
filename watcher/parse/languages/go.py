"""Go: `panic:` / `fatal error:` and goroutine dumps."""

from __future__ import annotations

import re

from watcher.model import Frame
from watcher.parse.languages.common import (
    Fixture,
    Language,
    Trace,
    int_or_none,
    is_in_app,
    remembered,
)

# --- Go --------------------------------------------------------------------------------------

_GO_FILE = re.compile(r"\s+(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?(?: fp=\S+ sp=\S+ pc=\S+)?\s*$")
_GO_HEADS = ("panic: ", "fatal error: ")


def _go_error(line: str) -> tuple[str, str]:
    kind, _, message = line.partition(": ")
    if kind == "panic" and message.startswith("runtime error: "):
        return "runtime error", message[len("runtime error: ") :]
    return kind, message.removesuffix(" [recovered]")


def _go_function(line: str) -> str:
    line = line.strip().removeprefix("created by ")
    line = line.split(" in goroutine ", 1)[0]
    if line.endswith(")") and "(" in line:
        line = line[: line.rfind("(")]
    return line


# what an indented line says (file, line, in_app; None: no file line) and the function an
# unindented line names, remembered per line (memo.remember): a service's stacks repeat them
@remembered
def _file_of(line: str) -> tuple[str, int | None, bool] | None:
    match = _GO_FILE.match(line)
    if match is None:
        return None
    file = match.group(1)
    return file, int_or_none(match.group(2)), is_in_app(file)


_function_of = remembered(_go_function)


def _parse_go(lines: list[str]) -> Trace:
    """The panicking goroutine's frames (the first block); zap's header-less stacks too."""
    frames: list[Frame] = []
    exc_type = exc_msg = None
    function = ""
    for line in lines:
        if line.startswith(_GO_HEADS) and exc_type is None:
            exc_type, exc_msg = _go_error(line)
        elif line.startswith("goroutine "):
            if frames:
                break
        elif line[:1] in ("\t", " "):
            found = _file_of(line)
            if found is not None:
                frames.append(Frame(found[0], found[1], function, found[2]))
        elif line:
            function = _function_of(line)
    return Trace("go", exc_type, exc_msg, _go_panicking(frames))


def _go_panicking(frames: list[Frame]) -> list[Frame]:
    """Outermost first, cut at the last `panic(…)`: a deferred recover that re-panics is not
    where the error happened, the frame that panicked first is (it sits below the last panic)."""
    for index in range(len(frames) - 1, -1, -1):
        if frames[index].function in ("panic", "runtime.gopanic") and index + 1 < len(frames):
            frames = frames[index + 1 :]
            break
    frames.reverse()
    return frames


def _panic_only(line: str, lines: list[str]) -> Trace | None:
    if not line.startswith(_GO_HEADS):
        return None
    exc_type, exc_msg = _go_error(line)
    return Trace("go", exc_type, exc_msg, [])


LANGUAGE = Language(
    name="go",
    parse=_parse_go,
    is_frame=lambda line, stripped: ".go:" in stripped and bool(_GO_FILE.match(line)),
    is_start=lambda line: (
        line.startswith(_GO_HEADS) or (line.startswith("goroutine ") and " [" in line)
    ),
    start_firsts="".join(sorted({head[0] for head in (*_GO_HEADS, "goroutine ")})),
    decides=True,
    header_only=_panic_only,
    fixtures=(
        Fixture(
            "panic: runtime error: invalid memory address or nil pointer dereference\n"
            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x623edf]\n\n"
            "goroutine 1 [running]:\nmain.balanceOf(0x0)\n\t/srv/app/accounts.go:23 +0x9f\n"
            "main.main()\n\t/srv/app/main.go:11 +0x1d",
            "runtime error",
            "main.balanceOf",
        ),
    ),
)
