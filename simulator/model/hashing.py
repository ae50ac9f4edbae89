"""Counter-based hashing: the only source of randomness in the model.

Every random-looking number is `mix(key + counter * GOLDEN)` (the splitmix64 output function),
so a value depends only on the seed-derived key and its counters, never on which values were
asked for before. That is what lets any request order, any chunking and any process give the
same readings. The numpy and the pure-Python versions are bit-identical (tests check it), so
scalar identity look-ups need no numpy round trip.

Only integer operations and IEEE-exact float operations (+, -, *, /) are applied per element;
transcendental functions (exp, sin, log) are evaluated once into fixed tables, because their
SIMD and scalar code paths may round differently depending on an element's position.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..ids import derive_bytes

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB

_G = np.uint64(GOLDEN)
_NM1 = np.uint64(_M1)
_NM2 = np.uint64(_M2)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 2.0**-53


def derive_key(seed: int, *parts: object) -> int:
    """A 64-bit key for one purpose, so unrelated streams never share counters."""
    return int.from_bytes(derive_bytes(seed, "model-key", *parts, size=8), "big")


def mix_int(z: int) -> int:
    z &= MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def hash_int(key: int, counter: int) -> int:
    return mix_int(key + (counter & MASK64) * GOLDEN)


def mix_inplace(z: U64) -> U64:
    """splitmix64's finaliser applied in place to a fresh uint64 array."""
    z ^= z >> _S30
    z *= _NM1
    z ^= z >> _S27
    z *= _NM2
    z ^= z >> _S31
    return z


def as_u64(values: npt.ArrayLike) -> U64:
    """Counters as uint64; negative int64 (days before 1970) wrap modulo 2**64 like hash_int."""
    arr = np.asarray(values)
    if arr.dtype == np.uint64:
        return arr
    return np.asarray(arr, dtype=np.int64).astype(np.uint64)


def hash_u64(key: int, counters: npt.ArrayLike) -> U64:
    """Vector form of hash_int: one hash per counter."""
    z = as_u64(counters) * _G
    z += np.uint64(key)
    return mix_inplace(z)


def hash_cells(row_keys: U64, counters: U64) -> U64:
    """Hash of (row, counter) for every pair: rows are per-meter keys from hash_u64.

    `row_keys` has shape (n,) and `counters` any shape c; the result has shape (n, *c).
    """
    step = counters * _G
    z = row_keys.reshape((-1,) + (1,) * step.ndim) + step
    return mix_inplace(z)


def unit(h: U64) -> F64:
    """Uniform floats in [0, 1) from the top 53 bits."""
    return (h >> _S11).astype(np.float64) * _TWO_M53


def unit_int(h: int) -> float:
    return (h >> 11) * _TWO_M53
