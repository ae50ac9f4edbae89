"""Reply faults for timeout testing: which misbehaviours hit a given request.

A fault hits a request with its probability (a seeded function of the request's key, so the
same scenario and seed fault the same requests) and, when the fault names groups, only if the
request touches a meter of one of them. Which faults exist and what they do to a reply:

- late: the reply (sync answer or every async part) leaves `delay_s` sim seconds later;
- no_reply: sync: the connection is held `delay_s` then reset; async: no result is sent;
- duplicate: every async part is sent twice;
- out_of_order: async parts are sent last to first;
- missing_part: one async part (seeded choice) is never sent;
- http_500: the sync answer is a bare HTTP 500 with no SOAP body;
- invalid: replies are well-formed XML that fails the schema (an unknown Header/Verb);
- connection_reset: the sync answer is a closed connection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..ids import derive_bytes
from ..model.fleet import Fleet

FAULT_KINDS = (
    "late", "no_reply", "duplicate", "out_of_order", "missing_part", "http_500", "invalid", "connection_reset",
)


@dataclass(frozen=True)
class FaultRule:
    kind: str
    rate: float
    groups: tuple[str, ...] = ()
    delay_s: float = 600.0


@dataclass(frozen=True)
class ActiveFaults:
    kinds: tuple[str, ...] = ()  # in FAULT_KINDS order
    delay_s: float = 0.0         # for late and no_reply
    key: int = 0

    def __contains__(self, kind: object) -> bool:
        return kind in self.kinds

    def pick(self, n: int) -> int:
        """A seeded choice among n items (which part goes missing)."""
        return int.from_bytes(derive_bytes(self.key, "pick", n, size=8), "big") % max(n, 1)


class FaultInjector:
    def __init__(self, fleet: Fleet, rules: Sequence[FaultRule], seed: int) -> None:
        for rule in rules:
            if rule.kind not in FAULT_KINDS:
                raise ValueError(f"unknown reply fault {rule.kind!r}")
            for name in rule.groups:
                if fleet.group_by_name(name) is None:
                    raise ValueError(f"reply fault {rule.kind}: no group named {name!r}")
        self._fleet = fleet
        self._rules = tuple(r for r in rules if r.rate > 0)
        self._seed = seed

    def decide(self, key: int, idx: np.ndarray) -> ActiveFaults:
        kinds: list[str] = []
        delay = 0.0
        for rule in sorted(self._rules, key=lambda r: FAULT_KINDS.index(r.kind)):
            if rule.groups and not any(
                np.isin(idx, self._fleet.group_members(g)).any()
                for g in (self._fleet.group_by_name(n) for n in rule.groups) if g is not None
            ):
                continue
            u = int.from_bytes(derive_bytes(self._seed, "reply-fault", rule.kind, key, size=8), "big") / 2**64
            if u < rule.rate:
                kinds.append(rule.kind)
                if rule.kind in ("late", "no_reply"):
                    delay = max(delay, rule.delay_s)
        pick_key = int.from_bytes(derive_bytes(self._seed, "pick", key, size=8), "big")
        return ActiveFaults(tuple(kinds), delay, key=pick_key)


_VERB = re.compile(rb"(<(?:[\w.-]+:)?Verb>)[^<]*(</(?:[\w.-]+:)?Verb>)")


def corrupt(message: bytes) -> bytes:
    """Well-formed but schema-invalid: a Header/Verb outside the 61968-100 list."""
    return _VERB.sub(rb"\1sent\2", message, count=1)
