"""Phase-A voltage: 230.0 V nominal, shaped by where a meter sits and how loaded the grid is.

v = 230.0 V + meter position (+-4 V) + feeder (+-3 V) - evening sag (up to 4.5 V)
    + solar rise at prosumers (up to 2.5 V) + per-second noise (+-1.5 V, triangular),
in whole decivolts and kept within 230 V +-10 %. The noise is hashed from (meter, second), so
asking twice for the same instant gives the same value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .calendar import DAY_S, SLOT_S, civil, month_starts, weekday
from .hashing import derive_key, hash_cells, hash_u64, unit
from .loadshapes import LOAD_SHAPE_BY_WEEKDAY, SOLAR_SHAPE_BY_DOY

I64 = npt.NDArray[np.int64]

NOMINAL_DV = 2300
_LOW_DV, _HIGH_DV = 2070, 2530
_HALF = np.uint64(0xFFFFFFFF)


class VoltageChannel:
    def __init__(self, seed: int) -> None:
        self._k_meter = derive_key(seed, "voltage", "meter")
        self._k_feeder = derive_key(seed, "voltage", "feeder")
        self._k_noise = derive_key(seed, "voltage", "noise")

    def at(self, m: I64, feeders: I64, prosumer: npt.NDArray[np.bool_], local_t: int, t: int) -> I64:
        d = local_t // DAY_S
        slot = (local_t - d * DAY_S) // SLOT_S
        doy = d - month_starts(civil(d)[0])[0] + 1
        sag = 45.0 * float(LOAD_SHAPE_BY_WEEKDAY[weekday(d), slot])
        rise = 25.0 * float(SOLAR_SHAPE_BY_DOY[doy, slot])
        h = hash_cells(hash_u64(self._k_noise, m), np.array([t], dtype=np.int64).astype(np.uint64))[:, 0]
        noise = ((h & _HALF).astype(np.float64) + (h >> np.uint64(32)).astype(np.float64)) * 2.0**-32 - 1.0
        v = (
            (NOMINAL_DV - sag)
            + 80.0 * (unit(hash_u64(self._k_meter, m)) - 0.5)
            + 60.0 * (unit(hash_u64(self._k_feeder, feeders)) - 0.5)
            + np.where(prosumer, rise, 0.0)
            + 15.0 * noise
        )
        return np.clip(np.floor(v + 0.5), _LOW_DV, _HIGH_DV).astype(np.int64)
