"""The scenario file's schema: every key, its type, its default and its bounds.

pydantic gives us error locations as key paths, which become the one-line CLI errors users see;
hand-written checks would drift from the defaults documented in README.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MeterClassName = Literal["residential", "commercial", "prosumer"]
_DESTINATION = r"^(https?://|queue://|topic://)\S+$"  # where messages may be sent


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


class LatencySection(_Section):
    kind: Literal["fixed", "uniform", "lognormal", "empirical"] = "lognormal"
    value_s: float = Field(2.0, ge=0, description="fixed: every attempt takes this long")
    low_s: float = Field(0.5, ge=0, description="uniform: lower bound")
    high_s: float = Field(5.0, ge=0, description="uniform: upper bound")
    median_s: float = Field(5.0, gt=0, description="lognormal: median")
    sigma: float = Field(0.6, ge=0, le=5, description="lognormal: sigma of the underlying normal")
    percentiles: list[tuple[float, float]] = Field(
        default_factory=list, description="empirical: [[p, seconds], ...] with p rising from 0 to 1"
    )

    @model_validator(mode="after")
    def _consistent(self) -> LatencySection:
        if self.kind == "uniform" and self.high_s < self.low_s:
            raise ValueError("uniform latency: high_s must be >= low_s")
        if self.kind == "empirical":
            ps = [p for p, _ in self.percentiles]
            secs = [v for _, v in self.percentiles]
            if not ps:
                raise ValueError("empirical latency: give percentiles, e.g. [[0.5, 2.0], [0.99, 20.0], [1.0, 60.0]]")
            if any(not 0 <= p <= 1 for p in ps) or ps != sorted(ps) or len(set(ps)) != len(ps) or ps[-1] != 1:
                raise ValueError("empirical latency: percentiles must rise strictly from 0..1 and end at 1.0")
            if secs != sorted(secs) or secs[0] < 0:
                raise ValueError("empirical latency: seconds must be >= 0 and not decrease")
        return self


class CommClassSection(_Section):
    share: float = Field(1.0, ge=0, description="share of the fleet on this comm class")
    latency: LatencySection = Field(default_factory=LatencySection)  # type: ignore[arg-type]
    success: float = Field(0.98, ge=0, le=1, description="probability that one attempt succeeds")
    retries: int = Field(2, ge=0, le=20, description="further attempts after a failed one")
    retry_delay_s: float = Field(20.0, ge=0, description="wait before each retry")


def _default_comm_classes() -> dict[str, CommClassSection]:
    """An RF mesh with slow, occasionally failing reads, and a faster cellular minority."""
    return {
        "rf_mesh": CommClassSection.model_validate({
            "share": 0.8, "latency": {"kind": "lognormal", "median_s": 6.0, "sigma": 0.7},
            "success": 0.97, "retries": 2, "retry_delay_s": 20.0,
        }),
        "cellular": CommClassSection.model_validate({
            "share": 0.2, "latency": {"kind": "uniform", "low_s": 0.5, "high_s": 3.0},
            "success": 0.99, "retries": 1, "retry_delay_s": 5.0,
        }),
    }


class CohortSection(_Section):
    name: str = ""
    mode: Literal["unreachable", "slow", "flaky"]
    fraction: float | None = Field(None, ge=0, le=1, description="a seeded share of the whole fleet")
    group: str | None = Field(None, description="a group name: FEEDER-01, COLLECTOR-0003, CLASS-PROSUMER")
    meters: list[str] = Field(default_factory=list, description="meters by mRID or serial name")
    factor: float = Field(1.0, gt=0, description="slow: latency multiplier")
    success: float | None = Field(None, ge=0, le=1, description="flaky: per-attempt success probability")
    start_s: float | None = Field(None, ge=0, description="active from this many sim seconds after the start")
    end_s: float | None = Field(None, ge=0, description="active until this many sim seconds after the start")

    @model_validator(mode="after")
    def _selects_something(self) -> CohortSection:
        if self.fraction is None and self.group is None and not self.meters:
            raise ValueError("a cohort selects meters by fraction, group or meters")
        if self.start_s is not None and self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class CommsSection(_Section):
    attempt_timeout_s: float = Field(120.0, gt=0, description="a meter silent this long (all tries) is timed out (4.1)")
    data_unavailable: float = Field(0.0, ge=0, le=1, description="share of answering meters with no data (5.7)")
    classes: dict[str, CommClassSection] = Field(default_factory=_default_comm_classes)
    cohorts: list[CohortSection] = Field(default_factory=list)

    @field_validator("classes")
    @classmethod
    def _some_class(cls, v: dict[str, CommClassSection]) -> dict[str, CommClassSection]:
        if not v or sum(c.share for c in v.values()) <= 0:
            raise ValueError("name at least one comm class with a share > 0")
        if len(v) > 255:
            raise ValueError("at most 255 comm classes")
        return v


class FaultSection(_Section):
    probability: float | None = Field(
        None, ge=0, le=1, description="share of requests hit; default 1 when groups are given, else 0"
    )
    groups: list[str] = Field(default_factory=list, description="only requests touching meters of these groups")
    delay_s: float = Field(600.0, ge=0, description="late: extra sim seconds before the reply")

    def rate(self) -> float:
        if self.probability is not None:
            return self.probability
        return 1.0 if self.groups else 0.0


class ReplyFaultsSection(_Section):
    late: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    no_reply: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    duplicate: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    out_of_order: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    missing_part: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    http_500: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    invalid: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]
    connection_reset: FaultSection = Field(default_factory=FaultSection)  # type: ignore[arg-type]


class RepliesSection(_Section):
    style: Literal["response", "created"] = Field(
        "response", description="async results as <Noun>ResponseMessage, or as Created<Noun>"
    )
    part_size: int = Field(0, ge=0, description="async results in parts of at most this many meters; 0: one message")
    delivery: Literal["as_completed", "at_end"] = Field(
        "as_completed", description="send each part when its meters are done, or all parts when the job ends"
    )
    ack_required: bool = Field(False, description="set AckRequired on async results; no ack = failed delivery")
    events_address: str | None = Field(
        None, pattern=_DESTINATION, description="where EndDeviceEvents go when a request names no ReplyAddress"
    )
    faults: ReplyFaultsSection = Field(default_factory=ReplyFaultsSection)


class RelaySection(_Section):
    failure_probability: float = Field(0.01, ge=0, le=1, description="a relay operation fails (3.31.0.84 / 3.31.0.67)")
    failure_meters: list[str] = Field(default_factory=list, description="meters whose relay always fails")
    failure_groups: list[str] = Field(default_factory=list, description="groups whose relays always fail")
    connect_when_connected: Literal["success", "failure"] = Field(
        "success", description="a connect on a connected meter: idempotent success, or a failure"
    )
    disconnect_when_disconnected: Literal["success", "failure"] = Field(
        "success", description="a disconnect on a disconnected meter: idempotent success, or a failure"
    )
    customer_closes_probability: float = Field(
        0.9, ge=0, le=1, description="share of armed meters whose customer closes the relay"
    )
    customer_delay_median_s: float = Field(1800.0, gt=0, description="median delay before the customer closes")


class DestinationsSection(_Section):
    readings: list[str] = Field(
        default_factory=list, description="where scheduled MeterReadings go: SOAP URLs, queue:// or topic://")
    events: list[str] = Field(
        default_factory=list, description="where unsolicited EndDeviceEvents go: SOAP URLs, queue:// or topic://")
    ack_required: bool = Field(False, description="ask these destinations to acknowledge")

    @field_validator("readings", "events")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://", "queue://", "topic://")) or len(url.split("://", 1)[1]) == 0:
                raise ValueError(f"{url!r} is not an http(s) URL, queue://NAME or topic://NAME")
        return v


class JmsSection(_Section):
    enabled: bool = Field(False, description="connect to a JMS broker (ActiveMQ, over STOMP)")
    host: str = Field("127.0.0.1", description="broker host")
    port: int = Field(61613, ge=1, le=65535, description="broker STOMP port")
    login: str | None = Field(None, description="broker user, if it asks for one")
    passcode: str | None = Field(None, description="broker password")
    request_queue: str = Field(
        "queue://hes.requests", pattern=r"^queue://\S+$", description="the queue the head-end takes requests from")
    dead_letter_queue: str = Field(
        "queue://DLQ.hes.requests", pattern=r"^queue://\S+$",
        description="requests that cannot be answered (no reply-to) go here, with the reason")
    event_topic: str = Field(
        "topic://hes.events.{noun}", pattern=r"^((queue|topic)://\S+)?$",
        description="unsolicited EndDeviceEvents and MeterReadings also go here ({noun} is replaced); '' for none")
    prefetch: int = Field(100, ge=1, le=100_000, description="requests taken from the queue before any is answered")
    persistent: bool = Field(True, description="send persistent messages (they survive a broker restart)")


class PushSection(_Section):
    name: str = Field(min_length=1)
    every: Literal["daily", "hourly"] = "daily"
    at: str = Field("02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="daily: local HH:MM")
    at_minute: int = Field(5, ge=0, le=59, description="hourly: minute of the hour")
    reading_types: list[str] = Field(default_factory=lambda: ["0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"])
    group: str | None = Field(None, description="a group name; none: the whole fleet")
    batch_meters: int = Field(1000, ge=1)
    window_s: float = Field(3600.0, ge=0, description="spread one push's messages over this many sim seconds")
    missing_fraction: float = Field(0.0, ge=0, le=1, description="meters left out, sent later as a backfill")
    backfill_after_s: float = Field(7200.0, ge=0)
    gap_fraction: float = Field(0.0, ge=0, le=1, description="intervals the head-end did not collect")
    estimate_gaps: bool = Field(False, description="estimate gaps (2.8.0) instead of leaving them missing (2.5.259)")
    duplicate_fraction: float = Field(0.0, ge=0, le=1, description="messages sent twice")


class OutagesSection(_Section):
    rate_per_group_per_day: float = Field(0.0, ge=0, description="Poisson outages per feeder (or collector) per day")
    scope: Literal["feeder", "collector"] = "feeder"
    duration_median_s: float = Field(3600.0, gt=0)
    duration_sigma: float = Field(1.0, ge=0, le=5)
    last_gasp_fraction: float = Field(0.8, ge=0, le=1, description="affected meters whose last gasp arrives")


class EventRateSection(_Section):
    event_type: str = Field(pattern=r"^\d+\.\d+\.\d+\.\d+$")
    per_meter_per_day: dict[MeterClassName, float] = Field(description="rate per meter per day, by meter class")


class IncidentsSection(_Section):
    outages: OutagesSection = Field(default_factory=OutagesSection)  # type: ignore[arg-type]
    events: list[EventRateSection] = Field(default_factory=list, description="rated events by meter class")


TimelineAction = Literal["outage", "unreachable", "slow", "disconnect", "connect", "storm", "push"]


class TimelineEntry(_Section):
    at_s: float = Field(0.0, ge=0, description="sim seconds after the start")
    action: TimelineAction
    group: str | None = None
    meters: list[str] = Field(default_factory=list, description="meters by mRID or serial")
    comm_class: str | None = Field(None, description="every meter of this comm class (e.g. rf_mesh)")
    duration_s: float = Field(1200.0, gt=0, description="outage, unreachable, slow: how long")
    factor: float = Field(5.0, gt=0, description="slow: latency multiplier")
    event_type: str = Field("3.12.43.257", pattern=r"^\d+\.\d+\.\d+\.\d+$", description="storm: the event")
    within_s: float = Field(60.0, gt=0, description="storm: events spread over this long")
    push: str | None = Field(None, description="push: the name of a push to run now")

    @model_validator(mode="after")
    def _targets(self) -> TimelineEntry:
        needs_meters = self.action != "push"
        if needs_meters and self.group is None and not self.meters and self.comm_class is None:
            raise ValueError(f"{self.action} needs a group, meters or a comm_class")
        if self.action == "push" and not self.push:
            raise ValueError("push needs the name of a push")
        return self


class OutboxSection(_Section):
    path: str | None = Field(None, description="SQLite file; default hes-sim-data/<scenario name>/outbox.sqlite3")
    retry_initial_s: float = Field(1.0, gt=0, description="first retry after this many seconds")
    retry_factor: float = Field(2.0, ge=1, description="each retry waits this much longer")
    retry_max_s: float = Field(300.0, gt=0, description="longest wait between retries")
    max_attempts: int = Field(0, ge=0, description="give up after this many attempts; 0: never")
    concurrency: int = Field(8, ge=1, le=1024, description="deliveries in flight at once")
    timeout_s: float = Field(30.0, gt=0, description="HTTP timeout of one delivery")


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
    max_jobs_in_flight: int = Field(8, ge=1, description="requests being worked on at once")
    max_queued_jobs: int = Field(100, ge=0, description="requests waiting for a slot; more get 3.2")
    max_outbox_backlog: int = Field(100_000, ge=1, description="undelivered messages past which requests get 5.1")
    sync_timeout_s: float = Field(60.0, gt=0, description="a synchronous answer waits at most this (sim seconds)")
    max_events_per_reply: int = Field(100_000, ge=1, description="GetEndDeviceEvents answers more with 3.1")
    ping_control_type: str = Field(
        "3.1.0.0", pattern=r"^\d+\.\d+\.\d+\.\d+$", description="EndDeviceControlType code that means ping"
    )


class ServerSection(_Section):
    host: str = Field("127.0.0.1", description="address the SOAP server binds")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one")


class Scenario(_Section):
    name: str = Field("scenario", min_length=1)
    description: str = ""
    seed: int = Field(1, ge=0, le=2**63 - 1, description="every random choice derives from it")
    fleet: FleetSection = Field(default_factory=FleetSection)  # type: ignore[arg-type]
    clock: ClockSection = Field(default_factory=ClockSection)  # type: ignore[arg-type]
    comms: CommsSection = Field(default_factory=CommsSection)  # type: ignore[arg-type]
    headend: HeadEndSection = Field(default_factory=HeadEndSection)  # type: ignore[arg-type]
    replies: RepliesSection = Field(default_factory=RepliesSection)  # type: ignore[arg-type]
    relay: RelaySection = Field(default_factory=RelaySection)  # type: ignore[arg-type]
    destinations: DestinationsSection = Field(default_factory=DestinationsSection)  # type: ignore[arg-type]
    pushes: list[PushSection] = Field(default_factory=list)
    incidents: IncidentsSection = Field(default_factory=IncidentsSection)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    outbox: OutboxSection = Field(default_factory=OutboxSection)  # type: ignore[arg-type]
    jms: JmsSection = Field(default_factory=JmsSection)  # type: ignore[arg-type]
    server: ServerSection = Field(default_factory=ServerSection)  # type: ignore[arg-type]

