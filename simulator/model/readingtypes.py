"""The reading types the simulated meters record, as plain data.

Codes are the 18-field IEC 61968-9 ReadingType strings, but to the model they are only keys:
it needs the channel a code reads from, the period of an interval code and how many decimals
the codec prints. Energy is whole Wh (code multiplier 3, unit Wh: printed as kWh with 3
decimals); voltage is whole decivolts (multiplier 0, unit V: printed with 1 decimal); demand is
whole W (multiplier 3, unit W: printed as kW with 3 decimals).

The maximum-demand code 8.8.2.6.1.1.8.0.0.0.0.0.0.0.0.3.38.0 reads, field by field (STANDARDS.md
d.6): macroPeriod 8 billingPeriod (the value belongs to the period since the last demand reset),
aggregate 8 maximum, measuringPeriod 2 (15-minute demand intervals), accumulation 6 indicating,
flowDirection 1 forward, commodity 1 electricity secondary metered, measurementKind 8 demand,
no interharmonic/argument/TOU/CPP/tier/phase, multiplier 3, unit 38 W, no currency.
"Indicating" is the pusher-needle register that holds the highest value seen until a reset,
which is what a maximum-demand register is; "latchingQuantity" (13) describes a cumulative
quantity that latches once it reaches its maximum, not a maximum of interval averages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadingTypeSpec:
    code: str  # 18-field code
    alias: str  # short stable name, e.g. "kwh_15m_delivered"
    kind: str  # "interval" | "register" | "instant" (daily is kind "interval" with period_s 86400)
    channel: str  # "delivered" | "received" | "voltage_a"
    period_s: int  # 900, 86400; 0 for register/instant
    decimals: int  # digits after the point when printed: 3 for Wh->kWh and W->kW, 1 for dV->V
    description: str
    # What the value is: "energy" (Wh), "voltage" (dV) or "demand" (W, maximum of 15-minute
    # averages since the later of the last demand reset and the local month start).
    quantity: str = "energy"


_SPECS = (
    ReadingTypeSpec("0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0", "kwh_15m_delivered", "interval",
                    "delivered", 900, 3, "15-min delta kWh delivered"),
    ReadingTypeSpec("0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0", "kwh_register_delivered", "register",
                    "delivered", 0, 3, "bulk kWh delivered register"),
    ReadingTypeSpec("0.0.2.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0", "kwh_15m_received", "interval",
                    "received", 900, 3, "15-min delta kWh received"),
    ReadingTypeSpec("0.0.0.1.19.1.12.0.0.0.0.0.0.0.0.3.72.0", "kwh_register_received", "register",
                    "received", 0, 3, "bulk kWh received register"),
    ReadingTypeSpec("11.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0", "kwh_daily_delivered", "interval",
                    "delivered", 86400, 3, "daily delta kWh delivered"),
    ReadingTypeSpec("11.0.0.4.19.1.12.0.0.0.0.0.0.0.0.3.72.0", "kwh_daily_received", "interval",
                    "received", 86400, 3, "daily delta kWh received"),
    ReadingTypeSpec("0.0.0.6.0.1.54.0.0.0.0.0.0.0.128.0.29.0", "voltage_a", "instant",
                    "voltage_a", 0, 1, "instantaneous phase-A voltage (V)", quantity="voltage"),
    # A value at an instant like a register, so kind "register"; it reads the delivered channel,
    # so every class records it. Code choice: see the module docstring.
    ReadingTypeSpec("8.8.2.6.1.1.8.0.0.0.0.0.0.0.0.3.38.0", "kw_max_demand_15m_delivered", "register",
                    "delivered", 0, 3,
                    "billing-period maximum 15-min demand kW delivered (billingPeriod, maximum, 15-min, "
                    "indicating, forward, demand, kW)", quantity="demand"),
)

READING_TYPES: dict[str, ReadingTypeSpec] = {s.code: s for s in _SPECS}
_BY_ALIAS: dict[str, ReadingTypeSpec] = {s.alias: s for s in _SPECS}

METER_CLASSES: tuple[str, ...] = ("residential", "commercial", "prosumer")

# Only prosumers export, so only they have the "received" channel.
_CLASS_CHANNELS: dict[str, frozenset[str]] = {
    "residential": frozenset({"delivered", "voltage_a"}),
    "commercial": frozenset({"delivered", "voltage_a"}),
    "prosumer": frozenset({"delivered", "received", "voltage_a"}),
}

_CLASS_CODES: dict[str, tuple[str, ...]] = {
    cls: tuple(code for code, spec in READING_TYPES.items() if spec.channel in channels)
    for cls, channels in _CLASS_CHANNELS.items()
}


def reading_type(code: str) -> ReadingTypeSpec | None:
    return READING_TYPES.get(code)


def reading_type_by_alias(alias: str) -> ReadingTypeSpec | None:
    """Scenario files may name types by alias rather than by 18-field code."""
    return _BY_ALIAS.get(alias)


def class_reading_types(meter_class: str) -> tuple[str, ...]:
    """Codes a class records, in READING_TYPES order; ValueError for an unknown class."""
    try:
        return _CLASS_CODES[meter_class]
    except KeyError:
        raise ValueError(f"unknown meter class {meter_class!r}; known: {', '.join(METER_CLASSES)}") from None


def class_has_channel(meter_class: str, channel: str) -> bool:
    return channel in _CLASS_CHANNELS[meter_class]
