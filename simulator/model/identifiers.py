"""Identifiers that encode a meter index and decode back to it without any table.

A million-meter fleet cannot afford a dict from mRID to index (~100 B per entry), so each
identifier carries its index in a form only this seed can produce and check:

- `InvertibleUuid`: 10 bytes of a keyed hash of the index (with the version-4 and variant
  bits set) followed by 6 bytes of a keyed 48-bit permutation of the index (a 4-round
  Feistel network), so neighbouring meters share no visible digits. Decoding inverts the
  permutation, checks the range and recomputes the head, so a foreign or garbled UUID is
  rejected unless it guesses 74 hashed bits.
- `DecimalPermutation`: `index * a + b (mod 10**digits)` with `a` a unit, inverted with the
  modular inverse. Neighbouring meters get unrelated-looking numbers.
"""

from __future__ import annotations

import uuid

import numpy as np
import numpy.typing as npt

from .hashing import derive_key, hash_int, hash_u64

_TAIL_BITS = 48
_HALF_BITS = _TAIL_BITS // 2
_HALF_MASK = (1 << _HALF_BITS) - 1
_ROUNDS = 4
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Positions of the 32 hex digits inside the 36-character canonical UUID text.
_HEX_POS = np.array([p for p in range(36) if p not in (8, 13, 18, 23)], dtype=np.intp)


class InvertibleUuid:
    def __init__(self, seed: int, kind: str, size: int) -> None:
        self._k1 = derive_key(seed, "uuid", kind, "head-1")
        self._k2 = derive_key(seed, "uuid", kind, "head-2")
        self._round_keys = tuple(derive_key(seed, "uuid", kind, "tail", r) for r in range(_ROUNDS))
        self._size = size

    def _permute(self, i: int) -> int:
        left, right = i >> _HALF_BITS, i & _HALF_MASK
        for key in self._round_keys:
            left, right = right, left ^ (hash_int(key, right) & _HALF_MASK)
        return (left << _HALF_BITS) | right

    def _unpermute(self, tail: int) -> int:
        left, right = tail >> _HALF_BITS, tail & _HALF_MASK
        for key in reversed(self._round_keys):
            left, right = right ^ (hash_int(key, left) & _HALF_MASK), left
        return (left << _HALF_BITS) | right

    def _permute_many(self, ind: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
        x = ind.astype(np.uint64)
        half = np.uint64(_HALF_MASK)
        left, right = x >> np.uint64(_HALF_BITS), x & half
        for key in self._round_keys:
            left, right = right, left ^ (hash_u64(key, right) & half)
        out: npt.NDArray[np.uint64] = (left << np.uint64(_HALF_BITS)) | right
        return out

    def _bytes(self, i: int) -> bytes:
        head = bytearray(hash_int(self._k1, i).to_bytes(8, "big"))
        head += (hash_int(self._k2, i) >> 48).to_bytes(2, "big")
        head[6] = (head[6] & 0x0F) | 0x40
        head[8] = (head[8] & 0x3F) | 0x80
        return bytes(head) + self._permute(i).to_bytes(6, "big")

    def encode(self, i: int) -> str:
        return str(uuid.UUID(bytes=self._bytes(i)))

    def encode_many(self, idx: npt.ArrayLike) -> list[str]:
        """The same text as `encode`, for many meters at numpy speed (hex built as bytes)."""
        ind = np.asarray(idx, dtype=np.int64).ravel()
        n = len(ind)
        if n == 0:
            return []
        raw = np.empty((n, 16), dtype=np.uint8)
        raw[:, 0:8] = hash_u64(self._k1, ind).astype(">u8").view(np.uint8).reshape(n, 8)
        raw[:, 8:10] = (hash_u64(self._k2, ind) >> np.uint64(48)).astype(">u2").view(np.uint8).reshape(n, 2)
        tail = self._permute_many(ind).astype(">u8").view(np.uint8).reshape(n, 8)
        raw[:, 10:16] = tail[:, 2:8]
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
        text = np.full((n, 36), ord("-"), dtype=np.uint8)
        digits = np.empty((n, 32), dtype=np.uint8)
        digits[:, 0::2] = _HEX[raw >> 4]
        digits[:, 1::2] = _HEX[raw & 0x0F]
        text[:, _HEX_POS] = digits
        return [b.decode("ascii") for b in text.view("S36").ravel().tolist()]

    def decode(self, text: str) -> int | None:
        """The index this text encodes, or None if it is not one of ours (any UUID spelling)."""
        try:
            raw = uuid.UUID(text.strip()).bytes
        except (ValueError, TypeError, AttributeError):
            return None
        i = self._unpermute(int.from_bytes(raw[10:], "big"))
        if i >= self._size or self._bytes(i) != raw:
            return None
        return i


def _unit_multiplier(seed: int, kind: str, modulus: int) -> int:
    """A large multiplier coprime with 10, so the map is a permutation that looks shuffled."""
    low = modulus // 10
    a = low + derive_key(seed, "perm", kind, "a") % (modulus - low)
    while a % 2 == 0 or a % 5 == 0:
        a += 1
    return a if a < modulus else a - low


class DecimalPermutation:
    def __init__(self, seed: int, kind: str, digits: int, size: int) -> None:
        self.modulus = 10**digits
        self.digits = digits
        self._a = _unit_multiplier(seed, kind, self.modulus)
        self._b = derive_key(seed, "perm", kind, "b") % self.modulus
        self._a_inv = pow(self._a, -1, self.modulus)
        self._size = size

    def encode(self, i: int) -> int:
        return (i * self._a + self._b) % self.modulus

    def encode_many(self, idx: npt.ArrayLike) -> npt.NDArray[np.int64]:
        # index < 1e8 and a < 1e10 keep the product under 2**63.
        ind = np.asarray(idx, dtype=np.int64)
        return (ind * self._a + self._b) % self.modulus

    def decode(self, value: int) -> int | None:
        i = ((value - self._b) * self._a_inv) % self.modulus
        return i if i < self._size else None

    def decode_text(self, digits: str) -> int | None:
        """Exactly `self.digits` ASCII digits, else None (no sign, no spaces, no other scripts)."""
        if len(digits) != self.digits or not (digits.isascii() and digits.isdigit()):
            return None
        return self.decode(int(digits))
