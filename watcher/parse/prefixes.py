"""Transport prefixes: what a shipper or a terminal wrote in front of the application's line.

journald/syslog (`Mar 04 08:09:06 host app[123]: `), Heroku/Logplex (`2024-…+00:00 app[web.1]: `),
Kubernetes CRI log files (`2024-…Z stderr F `), docker compose (`api-1  | `), `kubectl logs
--prefix` (`[pod/api-7d9/app] `), tree and box glyphs of terminal UIs (k9s borders, `⎿`) and ANSI
colours (also journald's `#033[…m` spelling) are not the application's words: the same error
shipped two ways must read the same. `strip_prefix` removes them before assembly, templating and
fingerprinting, and names the writer (host+process, dyno, pod/container, compose service, CRI
stream) so that interleaved writers are assembled apart.

Pure and cheap: a line that carries none of them costs a few character checks.
"""

from __future__ import annotations

import re

from watcher.parse.levels import level_word

# ESC [ … final byte, and the `#033[` text journald's syslog forwarding writes for ESC
_ANSI = re.compile(r"(?:\x1b|#033)\[[0-9;?]*[A-Za-z]")
# RFC 3339 timestamp, then a CRI stream and tag, a Logplex (Heroku) source, or a journald host and
# identifier (journalctl -o short-iso): one match decides all three
_DIGIT_PREFIX = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d) "
    r"(?:(stdout|stderr) ([FP]) |((?:app|heroku)\[[\w.-]+\]): |([\w.-]+) ([^\s\[\]:=]{1,64}"
    r"(?:\[\d+\])?): )"
)
# journald/syslog: "Mar  4 08:09:06 host ident[pid]: "
_SYSLOG = re.compile(
    r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ([\w.-]+) ([^\s\[\]:]{1,64}(?:\[\d+\])?): "
)
# docker compose always suffixes the replica number: "api-1  | ", "web_1    | "
_COMPOSE = re.compile(r"([a-z0-9][\w.-]{0,62}[-_]\d+)\s*\| ?")
_KUBECTL = re.compile(r"\[pod/([^/\]\s]+)/([^\]\s]+)\] ")
# box drawing (U+2500 to U+257F) and the "⎿" (U+23BF) continuation glyph of terminal UIs
_GLYPHS = re.compile(r"\s*[\u2500-\u257f\u23bf]+\s*")
_GLYPH_TAIL = re.compile(r"\s*[\u2502\u2503]\s*$")


def strip_prefix(text: str) -> tuple[str, str | None, bool] | None:
    """(the application's text, the writer's key or None, CRI partial) — None when nothing to strip.

    Only one transport prefix is removed: a shipper does not nest inside another one's lines in
    practice, and a second look would double the cost of every prefixed line.
    """
    changed = False
    if "\x1b" in text or "#033[" in text:
        text = _ANSI.sub("", text)
        changed = True
    first = text[:1]
    found = None
    if first.isdigit():
        if text[10:11] == "T" and text[4:5] == "-":
            found = _digit_prefix(text)
    elif first.isupper():
        if text[3:4] == " " and text[6:7] == " ":
            match = _SYSLOG.match(text)
            if match and not level_word(match.group(2).split("[", 1)[0]):
                found = text[match.end() :], f"{match.group(1)} {match.group(2)}", False
    elif first == "[":
        if text.startswith("[pod/"):
            match = _KUBECTL.match(text)
            if match:
                found = text[match.end() :], f"{match.group(1)}/{match.group(2)}", False
    elif first.islower() and "| " in text[:72]:
        match = _COMPOSE.match(text)
        if match:
            found = text[match.end() :], match.group(1), False
    elif first in " \u2502\u2503\u2514\u251c\u23bf" and not text[:1].isalnum():
        match = _GLYPHS.match(text)
        if match and match.end() > 0 and not text[: match.end()].isspace():
            rest = _GLYPH_TAIL.sub("", text[match.end() :])
            found = rest, None, False
    if found is not None:
        return found
    return (text, None, False) if changed else None


def _digit_prefix(text: str) -> tuple[str, str | None, bool] | None:
    match = _DIGIT_PREFIX.match(text)
    if match is None:
        return None
    stream, tag, dyno, host, ident = match.groups()
    rest = text[match.end() :]
    if stream is not None:
        return rest, stream, tag == "P"
    if dyno is not None:
        return rest, dyno, False
    if level_word(host) or level_word(ident.split("[", 1)[0]):
        return None  # "2024-…Z INFO app: msg" is a log line of its own, not a journald prefix
    return rest, f"{host} {ident}", False
