"""The scenario file's schema: every key, its type, its default and its bounds.

pydantic gives us error locations as key paths, which become the one-line CLI errors users see;
hand-written checks would drift from the defaults documented in README.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MeterClassName = Literal["residential", "commercial", "prosumer"]


class _Section(BaseModel):
    # Unknown keys are errors: a typo in a scenario must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class FleetSection(_Section):
    meters: int = Field(1000, ge=1, le=100_000_000, description="number of meters in the fleet")
    class_mix: dict[MeterClassName, float] = Field(
        default_factory=lambda: {"residential": 0.85, "commercial": 0.10, "prosumer": 0.05},  # type: ignore[arg-type]
        description="share of each meter class; normalised to sum 1",
    )
    feeders: int = Field(10, ge=1, le=100_000, description="feeders; each is an EndDeviceGroup FEEDER-nn")
    meters_per_collector: int = Field(
        250, ge=1, le=1_000_000, description="meters per collector; each is an EndDeviceGroup COLLECTOR-nnnn"
    )
    serial_prefix: str = Field("HES", min_length=1, max_length=8, pattern=r"^[A-Z0-9]+$")
    utc_offset_minutes: int = Field(0, ge=-840, le=840, description="fixed offset of the local day")
    register_origin_year: int = Field(2020, ge=1970, le=2100, description="registers count from this year")
    locale: str = Field("en_US", description="faker locale for customer names and addresses")

    @field_validator("class_mix")
    @classmethod
    def _mix_positive(cls, mix: dict[MeterClassName, float]) -> dict[MeterClassName, float]:
        if not mix:
            raise ValueError("name at least one meter class")
        if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError("shares must be >= 0 and not all zero")
        return mix

    @field_validator("utc_offset_minutes")
    @classmethod
    def _quarter_hours(cls, v: int) -> int:
        if v % 15:
            raise ValueError("must be a multiple of 15 minutes (intervals are 15 minutes)")
        return v


class ClockSection(_Section):
    start: datetime | Literal["now"] = Field(
        "now", description="sim time at start: an ISO 8601 date-time, or 'now' (wall clock)"
    )
    speed: float = Field(1.0, gt=0, le=1_000_000, description="sim seconds per wall second in live mode")

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime | str) -> datetime | str:
        if isinstance(v, datetime) and v.tzinfo is None:
            raise ValueError("give a UTC offset, e.g. 2026-01-01T00:00:00Z")
        return v


class HeadEndSection(_Section):
    source: str = Field("hes-sim", min_length=1, description="Header/Source of every message we send")
    max_meters_per_request: int = Field(
        10_000, ge=1, description="a request naming more meters is refused with code 3.1"
    )
    max_readings_per_reply: int = Field(
        10_000_000, ge=1, description="a reply that would carry more readings is refused with code 3.1"
    )
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="larger request bodies get 1.8")
    validate_requests: bool = Field(True, description="validate inbound messages against profiles/")
    validate_responses: bool = Field(False, description="validate every reply too (slow; for debugging)")


class ServerSection(_Section):
    host: str = Field("127.0.0.1", description="address the SOAP server binds")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one")


class Scenario(_Section):
    name: str = Field("scenario", min_length=1)
    description: str = ""
    seed: int = Field(1, ge=0, le=2**63 - 1, description="every random choice derives from it")
    fleet: FleetSection = Field(default_factory=FleetSection)  # type: ignore[arg-type]
    clock: ClockSection = Field(default_factory=ClockSection)  # type: ignore[arg-type]
    headend: HeadEndSection = Field(default_factory=HeadEndSection)  # type: ignore[arg-type]
    server: ServerSection = Field(default_factory=ServerSection)  # type: ignore[arg-type]

