"""The group ids a store may hold, as a Bloom filter.

The daemon looks a new group up in the store before opening it (the group may have been evicted
or stored by an earlier run). Under a flood of unique errors every line opens a new group, and
that read cost ~25 us of a line's ~50 us budget while answering "not there" every time. A Bloom
filter answers "certainly not there" from memory; "maybe" still reads the store, so a false
positive costs one read and nothing is ever missed.
"""

from __future__ import annotations

# 2 MiB of bits and 4 probes: ~0.2 % false positives at a million ids, ~2 % at three million
BITS = 1 << 24
PROBES = 4


class KnownIds:
    """A set of strings that may answer "maybe" for one it never held, never "no" for one it did."""

    __slots__ = ("_bits", "_mask")

    def __init__(self, bits: int = BITS) -> None:
        if bits & (bits - 1):
            raise ValueError("bits must be a power of two")
        self._bits = bytearray(bits // 8)
        self._mask = bits - 1

    def add(self, key: str) -> None:
        """Remember `key`."""
        # _probes, inlined (every committed group is added: a flood's every line)
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        step = (h >> 32) | 1
        bits, mask = self._bits, self._mask
        for i in range(PROBES):
            bit = (h + i * step) & mask
            bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        # the probes of _probes one at a time, stopping at the first clear bit: a flood asks
        # for ids never stored, and the first probe alone answers "no" for ~all of them
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        step = (h >> 32) | 1
        bits, mask = self._bits, self._mask
        for i in range(PROBES):
            bit = (h + i * step) & mask
            if not bits[bit >> 3] & (1 << (bit & 7)):
                return False
        return True

    def _probes(self, key: str) -> list[int]:
        # double hashing on the process's string hash (the filter never leaves the process)
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        step = (h >> 32) | 1
        return [(h + i * step) & self._mask for i in range(PROBES)]
