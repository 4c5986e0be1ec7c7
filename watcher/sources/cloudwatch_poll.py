"""One log group's follow poll: its FilterLogEvents query, resumed by next token after an error.

An error that outlives botocore's retries (a throttle, say) part-way through a query's pages
leaves the next token of the first page not yet delivered; the next attempt goes on from it,
with the same start, end and filter (FilterLogEvents honours a token only with the parameters
that issued it), and only then reads the new window. Restarting from the poll position instead
would re-read the whole overlap window: with several pages in it and frequent throttles, no
attempt got past them.

The pages before the interruption were delivered (lines yielded, ids kept for de-duplication)
and the token goes on after them, so the group is still read in timestamp order. Tokens live in
memory only: the persisted cursors are made from delivered lines alone and a restart resumes
from them as before, so resuming never moves a cursor past an event not yet delivered.

A refused token (InvalidParameterException, e.g. expired) or an empty last page in answer to it
(how moto, and by its account AWS, answers a token it does not know; a real end looks the same)
falls back to a fresh query from the poll position: event ids drop what it re-reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import botocore.exceptions as bx

from watcher.model import RawLine
from watcher.sources import cloudwatch_aws as aws
from watcher.sources.cloudwatch_events import GroupTail, Resume, chunks

if TYPE_CHECKING:
    from watcher.sources.cloudwatch import CloudWatchSource


async def poll_group(
    src: CloudWatchSource, tail: GroupTail, end: int
) -> AsyncIterator[list[RawLine]]:
    """Every page of one group's window [tail.start, end], de-duplicated; first the rest of a
    query an error interrupted."""
    if tail.resume is not None:
        async for batch in _resume(src, tail, tail.resume):
            yield batch
    if tail.start > end:
        return
    tail.begin_read()
    async for batch in _query(src, tail, tail.start, end):
        yield batch


async def _resume(
    src: CloudWatchSource, tail: GroupTail, resume: Resume
) -> AsyncIterator[list[RawLine]]:
    """The interrupted query from its token; when the token is refused, nothing (the fresh query
    after it re-reads from tail.start)."""
    try:
        async for batch in _query(src, tail, resume.start, resume.end, resume.token):
            yield batch
    except bx.ClientError as exc:
        # only the stored token's own call falls back: a token the service just issued that is
        # refused is a fault like any other (and, stored, is dropped at the next attempt)
        if tail.resume is not resume or not aws.refuses_token(exc):
            raise
        tail.resume = None
        src.ctx.log.info(
            "next token refused; reading again from the poll position",
            source=src.name,
            group=tail.group,
            error=aws.describe(exc),
        )


async def _query(
    src: CloudWatchSource, tail: GroupTail, start: int, end: int, token: str | None = None
) -> AsyncIterator[list[RawLine]]:
    """One query's pages, de-duplicated; `tail.resume` holds the next page's token meanwhile."""
    resumed = token is not None
    async for page in src.pages(tail.group, start, end, token=token):
        if resumed and not page.events and page.next_token is None:
            # indistinguishable from an unknown token: the window is not taken as read
            tail.resume = None
            return
        resumed = False
        lines = src.to_lines(tail.group, page.events, tail)
        if page.events:
            tail.advance(int(page.events[-1]["timestamp"]))
        for batch in chunks(lines):
            yield batch
        # stored only once the page's lines are out: should fetching the next page fail, the
        # token names the first page not delivered
        tail.resume = Resume(start, end, page.next_token) if page.next_token else None
    tail.resume = None
    tail.advance(end)
