"""Cyclic-GC settings for a process that runs the pipeline: the CLI's and each worker's."""

from __future__ import annotations

import gc

# Fewer cyclic-GC passes: the pipeline allocates many short-lived, acyclic objects, so the
# default gen-0 threshold (700) ran a collection every few events, and each older-generation
# pass walked the whole group table. Measured on 300k mixed lines: ~10 % less CPU.
THRESHOLDS = (50_000, 50, 100)


def tune() -> None:
    """Raise the collection thresholds, and freeze what is alive now (modules, config,
    compiled regexes) so that no collection walks it again."""
    gc.set_threshold(*THRESHOLDS)
    gc.freeze()
