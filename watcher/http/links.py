"""Links from a pattern's frames to the code: `[report] repo_url`, e.g.
"https://github.com/acme/api/blob/{ref}/{path}#L{line}", at the release the logs name.

{ref} is the pattern's most frequent `release` tag (from a git_sha, release or version field of
its events) when it looks like a git ref, else `[report] default_ref`. Only in-app frames get a
link: a library's file is not in the repository.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from watcher.model import ErrorGroup, Frame

# absolute roots where containers and hosts put the code; what follows is the repository's own
# path (a relative "app/db.py" is already one)
_DEPLOY_ROOT = re.compile(r"^/(?:usr/src/app|app|srv|code|workspace|home/[^/]+/[^/]+)/")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")

FrameLinker = Callable[[ErrorGroup, Frame], str | None]


def no_links(_group: ErrorGroup, _frame: Frame) -> str | None:
    """The linker when no `repo_url` is configured."""
    return None


@dataclass(frozen=True)
class RepoLinks:
    """Makes a frame's URL from the configured template."""

    template: str
    default_ref: str = "main"

    def __call__(self, group: ErrorGroup, frame: Frame) -> str | None:
        if not self.template or not frame.in_app:
            return None
        values = {
            "path": urllib.parse.quote(repo_path(frame.file)),
            "line": "" if frame.line is None else str(frame.line),
            "ref": urllib.parse.quote(ref_of(group, self.default_ref), safe="/"),
        }
        return self.template.format_map(values)


def repo_path(file: str) -> str:
    """A frame's file as a path in the repository: the deploy root ("/app/") removed."""
    path = _DEPLOY_ROOT.sub("", file.replace("\\", "/"), count=1)
    return path.removeprefix("./").lstrip("/")


def ref_of(group: ErrorGroup, default: str) -> str:
    """The release most of the pattern's events came from, when it can name a git ref."""
    releases = group.tags.get("release") or {}
    named = [(n, r) for r, n in releases.items() if r != "other" and _REF.fullmatch(r)]
    return max(named)[1] if named else default


def linker(template: str, default_ref: str) -> FrameLinker:
    """The frame linker for a `[report]` section."""
    return RepoLinks(template, default_ref) if template else no_links
