"""Seeded identifiers: the same (seed, stream, counter) always gives the same UUID.

Message IDs are not part of the reproducible payload, but deriving them from the seed makes
whole runs replayable byte for byte, which helps when diffing traces.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid


def derive_bytes(seed: int, *parts: object, size: int = 16) -> bytes:
    """`size` pseudo-random bytes that depend only on the seed and the parts."""
    h = hashlib.blake2b(digest_size=size, key=str(seed).encode()[:64])
    for p in parts:
        h.update(str(p).encode())
        h.update(b"\x1f")
    return h.digest()


def uuid_from_bytes(raw: bytes) -> str:
    """A version-4-shaped UUID string from 16 bytes (sets the version and variant bits)."""
    b = bytearray(raw[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def derive_uuid(seed: int, *parts: object) -> str:
    return uuid_from_bytes(derive_bytes(seed, *parts))


class IdStream:
    """A counter-based stream of UUIDs for one purpose (e.g. outbound MessageIDs)."""

    def __init__(self, seed: int, name: str) -> None:
        self._seed = seed
        self._name = name
        self._counter = itertools.count()

    def next(self) -> str:
        return derive_uuid(self._seed, self._name, next(self._counter))
