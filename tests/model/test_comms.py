"""Comm attempts: seeded outcomes, latency distributions, retries, timeouts and fault cohorts."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.model.comms import (
    OUTCOME_FAILED,
    OUTCOME_NO_DATA,
    OUTCOME_OK,
    OUTCOME_TIMEOUT,
    AttemptPlan,
    CohortSpec,
    CommClassSpec,
    CommConfig,
    CommModel,
    LatencySpec,
)
from simulator.model.fleet import Fleet, FleetConfig

FIXED_1S = LatencySpec("fixed", value_s=1.0)


def model(size: int = 10_000, seed: int = 5, latency: LatencySpec = FIXED_1S, success: float = 1.0,
          retries: int = 0, retry_delay_s: float = 30.0, timeout: float = 1e6,
          cohorts: tuple[CohortSpec, ...] = (), data_unavailable: float = 0.0) -> CommModel:
    cls = CommClassSpec("rf_mesh", latency, success=success, retries=retries, retry_delay_s=retry_delay_s)
    cfg = CommConfig(classes=(cls,), class_mix=(("rf_mesh", 1.0),), attempt_timeout_s=timeout,
                     data_unavailable=data_unavailable, cohorts=cohorts)
    return CommModel(Fleet(FleetConfig(seed=seed, size=size)), cfg)


def same(a: AttemptPlan, b: AttemptPlan) -> bool:
    return (np.array_equal(a.idx, b.idx) and np.array_equal(a.done_at, b.done_at)
            and np.array_equal(a.outcome, b.outcome) and np.array_equal(a.attempts, b.attempts)
            and np.array_equal(a.rtt_s, b.rtt_s, equal_nan=True))


def digest(p: AttemptPlan) -> str:
    h = hashlib.sha256()
    for arr in (p.idx, p.done_at, p.outcome, p.attempts, p.rtt_s):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


ALL = np.arange(10_000)


# -- the distribution test ------------------------------------------------------------

def test_two_percent_failure_count_is_within_tolerance_and_seeded() -> None:
    # 10,000 meters, one try each at 98 % success: failures ~ Binomial(10,000, 0.02), mean 200,
    # sd sqrt(10,000 * 0.02 * 0.98) = 14. Tolerance +-50 meters (0.5 % of the fleet, ~3.6 sd).
    m = model(success=0.98)
    plan = m.plan(ALL, 0.0, key=1)
    failed = int(np.count_nonzero(plan.outcome != OUTCOME_OK))
    assert abs(failed - 200) <= 50
    assert set(np.unique(plan.outcome).tolist()) == {OUTCOME_OK, OUTCOME_FAILED}
    assert same(plan, model(success=0.98).plan(ALL, 0.0, key=1))  # a fresh model, same seed
    other_key = m.plan(ALL, 0.0, key=2)
    assert not np.array_equal(plan.outcome, other_key.outcome)
    assert abs(int(np.count_nonzero(other_key.outcome != OUTCOME_OK)) - 200) <= 50
    assert not np.array_equal(plan.outcome, model(seed=6, success=0.98).plan(ALL, 0.0, key=1).outcome)


def test_a_meter_does_not_depend_on_the_others_asked_or_the_order() -> None:
    m = model(latency=LatencySpec("lognormal", median_s=3.0, sigma=1.0), success=0.7, retries=2, timeout=90.0)
    whole = m.plan(ALL, 12.5, key=99)
    pick = np.random.default_rng(0).permutation(10_000)[:1234]
    part = m.plan(pick, 12.5, key=99)
    assert same(part, whole.select(pick))
    assert same(m.plan(ALL, 12.5, key=99), whole)  # asking again changes nothing


def test_same_plan_in_another_process() -> None:
    code = (
        "import hashlib, numpy as np\n"
        "from simulator.model.fleet import Fleet, FleetConfig\n"
        "from simulator.model.comms import CommModel, CommConfig, CommClassSpec, LatencySpec, CohortSpec\n"
        "c = CommClassSpec('rf', LatencySpec('lognormal', median_s=3.0, sigma=1.0), success=0.7, retries=2)\n"
        "cfg = CommConfig((c,), (('rf', 1.0),), attempt_timeout_s=90.0, data_unavailable=0.1,\n"
        "                 cohorts=(CohortSpec('slow', fraction=0.2, factor=2.0),))\n"
        "p = CommModel(Fleet(FleetConfig(seed=5, size=10_000)), cfg).plan(np.arange(10_000)[::-1], 7.0, 3)\n"
        "h = hashlib.sha256()\n"
        "for a in (p.idx, p.done_at, p.outcome, p.attempts, p.rtt_s):\n"
        "    h.update(np.ascontiguousarray(a).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    m = model(latency=LatencySpec("lognormal", median_s=3.0, sigma=1.0), success=0.7, retries=2, timeout=90.0,
              data_unavailable=0.1, cohorts=(CohortSpec("slow", fraction=0.2, factor=2.0),))
    m.plan(np.arange(5), 0.0, 1)  # unrelated earlier requests must not shift anything
    assert out.stdout.strip() == digest(m.plan(ALL[::-1], 7.0, 3))


# -- latency distributions --------------------------------------------------------------------

def rtts(latency: LatencySpec, n: int = 20_000) -> np.ndarray:
    plan = model(size=n, latency=latency).plan(np.arange(n), 0.0, key=4)
    assert np.all(plan.outcome == OUTCOME_OK)
    assert np.array_equal(plan.done_at, plan.rtt_s)  # one try: done at start + its latency
    return plan.rtt_s


def test_fixed_latency() -> None:
    plan = model(latency=LatencySpec("fixed", value_s=2.5)).plan(ALL, 100.0, key=1)
    assert np.all(plan.rtt_s == 2.5) and np.all(plan.done_at == 102.5) and np.all(plan.attempts == 1)


def test_uniform_latency() -> None:
    x = rtts(LatencySpec("uniform", low_s=2.0, high_s=10.0))
    assert x.min() >= 2.0 and x.max() < 10.0
    # sample quantiles of 20,000 uniforms: sd of a quantile ~ sqrt(p(1-p)/n) * 8 s <= 0.03 s
    assert np.quantile(x, [0.1, 0.5, 0.9]) == pytest.approx([2.8, 6.0, 9.2], abs=0.12)


def test_lognormal_latency() -> None:
    x = rtts(LatencySpec("lognormal", median_s=4.0, sigma=0.8))
    # median sd ~ 1.2533 * sigma * median / sqrt(n) = 0.028 s; p90 = 4 * exp(1.2816 * 0.8) = 11.14 s
    assert float(np.median(x)) == pytest.approx(4.0, abs=0.12)
    assert float(np.quantile(x, 0.9)) == pytest.approx(4.0 * math.exp(1.2816 * 0.8), rel=0.04)
    assert float(np.quantile(x, 0.1)) == pytest.approx(4.0 * math.exp(-1.2816 * 0.8), rel=0.04)
    assert float(np.std(np.log(x))) == pytest.approx(0.8, rel=0.03)


def test_empirical_percentiles_are_reproduced() -> None:
    points = ((0.5, 2.0), (0.9, 6.0), (0.99, 20.0), (1.0, 60.0))
    x = rtts(LatencySpec("empirical", percentiles=points), n=50_000)
    for p, seconds in points:
        # the share at or below each point is p, within 4 binomial sd
        assert float(np.mean(x <= seconds)) == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / len(x)) + 1e-9)
    assert x.max() <= 60.0 and x.min() >= 0.0
    # below the first point the inverse CDF runs linearly from 0 s at p = 0
    assert float(np.quantile(x, 0.25)) == pytest.approx(1.0, abs=0.03)
    # between points: linear interpolation (p 0.7 halfway between 2 s and 6 s)
    assert float(np.quantile(x, 0.7)) == pytest.approx(4.0, abs=0.1)


def test_empirical_with_its_own_p0_and_a_last_p_below_one() -> None:
    x = rtts(LatencySpec("empirical", percentiles=((0.0, 1.0), (0.8, 5.0))))
    assert x.min() >= 1.0 and x.max() == 5.0
    assert np.mean(x == 5.0) == pytest.approx(0.2, abs=0.02)  # the top 20 % hold at the last value


@pytest.mark.parametrize("latency", [
    LatencySpec("gaussian"),
    LatencySpec("fixed", value_s=-1.0),
    LatencySpec("uniform", low_s=5.0, high_s=1.0),
    LatencySpec("lognormal", median_s=0.0, sigma=1.0),
    LatencySpec("empirical"),
    LatencySpec("empirical", percentiles=((0.9, 2.0), (0.5, 6.0))),
    LatencySpec("empirical", percentiles=((0.5, 6.0), (0.9, 2.0))),
])
def test_bad_latency_is_refused_naming_the_class(latency: LatencySpec) -> None:
    with pytest.raises(ValueError, match="rf_mesh"):
        model(size=10, latency=latency)


# -- tries, retries and timeouts --------------------------------------------------------------

def test_retries_and_their_delays_add_up() -> None:
    m = model(latency=LatencySpec("fixed", value_s=2.0), success=0.5, retries=2, retry_delay_s=30.0)
    plan = m.plan(ALL, 10.0, key=8)
    ok = plan.outcome == OUTCOME_OK
    k = plan.attempts.astype(float)
    # try k ends after k latencies and k-1 retry delays
    assert np.array_equal(plan.done_at[ok], 10.0 + 2.0 * k[ok] + 30.0 * (k[ok] - 1))
    assert np.all(plan.rtt_s[ok] == 2.0) and np.all(np.isnan(plan.rtt_s[~ok]))
    failed = plan.outcome == OUTCOME_FAILED
    assert np.all(plan.attempts[failed] == 3) and np.all(plan.done_at[failed] == 10.0 + 6.0 + 60.0)
    share = np.bincount(plan.attempts[ok], minlength=4)[1:] / 10_000
    assert share == pytest.approx([0.5, 0.25, 0.125], abs=0.02)
    assert np.mean(failed) == pytest.approx(0.125, abs=0.02)


@pytest.mark.parametrize(("timeout", "outcome", "attempts", "done"), [
    (40.0, OUTCOME_TIMEOUT, 2, 40.0),  # the third try would start at 64 s
    (65.0, OUTCOME_TIMEOUT, 3, 65.0),  # the third try would end at 66 s
    (66.0, OUTCOME_FAILED, 3, 66.0),  # just in time to fail
])
def test_timeout_caps_the_tries(timeout: float, outcome: int, attempts: int, done: float) -> None:
    m = model(latency=LatencySpec("fixed", value_s=2.0), success=0.0, retries=2, timeout=timeout)
    plan = m.plan(ALL[:100], 5.0, key=1)
    assert np.all(plan.outcome == outcome) and np.all(plan.attempts == attempts)
    assert np.all(plan.done_at == 5.0 + done)


def test_late_answers_time_out_at_the_timeout() -> None:
    m = model(latency=LatencySpec("lognormal", median_s=20.0, sigma=1.0), success=0.9, retries=1,
              retry_delay_s=5.0, timeout=30.0)
    plan = m.plan(ALL, 0.0, key=3)
    assert plan.done_at.max() == 30.0
    timed_out = plan.outcome == OUTCOME_TIMEOUT
    assert 0.2 < timed_out.mean() < 0.8
    assert np.all(plan.done_at[timed_out] == 30.0) and np.all(plan.done_at[~timed_out] <= 30.0)
    assert np.all(np.isnan(plan.rtt_s[timed_out]))


def test_no_data_replaces_ok_only_and_keeps_times() -> None:
    base = model(success=0.9).plan(ALL, 0.0, key=1)
    plan = model(success=0.9, data_unavailable=0.1).plan(ALL, 0.0, key=1)
    assert np.array_equal(plan.done_at, base.done_at)
    changed = plan.outcome != base.outcome
    assert np.all(base.outcome[changed] == OUTCOME_OK) and np.all(plan.outcome[changed] == OUTCOME_NO_DATA)
    answered = int(np.count_nonzero(base.outcome == OUTCOME_OK))
    assert int(changed.sum()) == pytest.approx(0.1 * answered, abs=4 * math.sqrt(0.09 * answered))


def test_empty_request() -> None:
    plan = model(size=10).plan(np.empty(0, dtype=np.int64), 0.0, key=1)
    assert len(plan) == 0 and plan.done_at.dtype == np.float64 and plan.outcome.dtype == np.uint8


def test_indices_outside_the_fleet_are_refused() -> None:
    with pytest.raises(IndexError):
        model(size=10).plan(np.array([3, 10]), 0.0, key=1)


# -- comm classes -----------------------------------------------------------------------------

def test_class_mix_and_per_class_behaviour() -> None:
    fleet = Fleet(FleetConfig(seed=2, size=100_000))
    rf = CommClassSpec("rf_mesh", LatencySpec("fixed", value_s=5.0), success=1.0, retries=0)
    cell = CommClassSpec("cellular", LatencySpec("fixed", value_s=1.0), success=1.0, retries=0)
    m = CommModel(fleet, CommConfig((rf, cell), (("cellular", 0.3), ("rf_mesh", 0.7))))
    assert m.class_names == ("rf_mesh", "cellular")
    assert m.comm_class.dtype == np.uint8 and m.comm_class.nbytes == 100_000
    assert np.bincount(m.comm_class, minlength=2) / 100_000 == pytest.approx([0.7, 0.3], abs=0.006)
    idx = np.arange(0, 100_000, 7)
    plan = m.plan(idx, 0.0, key=1)
    assert np.array_equal(plan.rtt_s, np.where(m.comm_class_of(idx) == 0, 5.0, 1.0))
    with pytest.raises(ValueError, match="satellite"):
        CommModel(fleet, CommConfig((rf,), (("satellite", 1.0),)))


# -- cohorts ----------------------------------------------------------------------------------

def test_fraction_cohort_size_and_effect() -> None:
    storm = CohortSpec("unreachable", fraction=0.1, name="storm")
    m = model(cohorts=(storm,), timeout=120.0)
    members = m.cohort_members(storm)
    assert abs(len(members) - 1000) <= 120  # sd 30
    plan = m.plan(ALL, 0.0, key=1)
    assert np.array_equal(np.flatnonzero(plan.outcome == OUTCOME_TIMEOUT), members)
    assert np.all(plan.done_at[members] == 120.0) and np.all(np.isnan(plan.rtt_s[members]))
    # one name nests: 10 % of "storm" lies within 20 % of "storm"; another name is independent
    wider = m.cohort_members(CohortSpec("unreachable", fraction=0.2, name="storm"))
    assert np.all(np.isin(members, wider))
    other = m.cohort_members(CohortSpec("unreachable", fraction=0.1, name="flood"))
    assert abs(len(np.intersect1d(members, other)) - 100) <= 45


def test_unreachable_tries_until_the_timeout_silently() -> None:
    lost = CohortSpec("unreachable", meters=(3, 4))
    m = model(latency=LatencySpec("fixed", value_s=2.0), retries=5, retry_delay_s=30.0, timeout=100.0,
              cohorts=(lost,))
    plan = m.plan(np.arange(6), 0.0, key=1)
    assert plan.outcome.tolist() == [OUTCOME_OK] * 3 + [OUTCOME_TIMEOUT] * 2 + [OUTCOME_OK]
    assert plan.attempts.tolist() == [1, 1, 1, 4, 4, 1]  # tries start at 0, 32, 64 and 96 s
    assert plan.done_at.tolist() == [2.0, 2.0, 2.0, 100.0, 100.0, 2.0]


def test_group_cohorts_have_exact_members() -> None:
    m = model()
    fleet = m.fleet
    assert np.array_equal(m.cohort_members(CohortSpec("slow", group="COLLECTOR-0002", factor=2)),
                          np.arange(250, 500))
    feeder = fleet.group_by_name("FEEDER-03")
    assert feeder is not None
    assert np.array_equal(m.cohort_members(CohortSpec("slow", group="FEEDER-03")), fleet.group_members(feeder))
    prosumers = m.cohort_members(CohortSpec("flaky", group="CLASS-PROSUMER", success=0.5))
    assert np.array_equal(prosumers, np.flatnonzero(fleet.class_index == 2))
    assert np.array_equal(m.cohort_members(CohortSpec("slow", meters=(9, 2, 2, 7))), [2, 7, 9])
    both = m.cohort_members(CohortSpec("slow", group="COLLECTOR-0001", meters=(9_999,)))
    assert np.array_equal(both, [*range(250), 9_999])
    plan = model(cohorts=(CohortSpec("slow", group="COLLECTOR-0002", factor=4.0),)).plan(ALL, 0.0, key=1)
    assert np.array_equal(np.flatnonzero(plan.rtt_s == 4.0), np.arange(250, 500))


@pytest.mark.parametrize(("cohort", "message"), [
    (CohortSpec("unreachable", group="FEEDER-99"), "FEEDER-99"),
    (CohortSpec("unreachable", group="collector-0001"), "collector-0001"),
    (CohortSpec("unreachable", meters=(10_000,)), "meters"),
    (CohortSpec("unreachable"), "fraction"),
    (CohortSpec("flaky", fraction=0.1), "success"),
    (CohortSpec("slow", fraction=0.1, factor=0.0), "factor"),
    (CohortSpec("offline", fraction=0.1), "mode"),
    (CohortSpec("slow", fraction=1.5), "fraction"),
    (CohortSpec("slow", fraction=0.1, start_s=10.0, end_s=10.0), "end_s"),
])
def test_bad_cohorts_are_refused(cohort: CohortSpec, message: str) -> None:
    m = model(size=10_000)
    with pytest.raises(ValueError, match=message):
        m.add_cohort(cohort)
    with pytest.raises(ValueError, match=message):
        model(size=10_000, cohorts=(cohort,))


def test_cohort_window_applies_to_requests_started_inside_it() -> None:
    outage = CohortSpec("unreachable", meters=(1,), start_s=100.0, end_s=200.0, name="outage")
    m = model(cohorts=(outage,), timeout=50.0)
    at = {t: int(m.plan(np.array([1]), t, key=1).outcome[0]) for t in (50.0, 100.0, 199.5, 200.0)}
    assert at == {50.0: OUTCOME_OK, 100.0: OUTCOME_TIMEOUT, 199.5: OUTCOME_TIMEOUT, 200.0: OUTCOME_OK}


def test_cohort_added_at_run_time_affects_later_plans_only() -> None:
    m = model()
    before = m.plan(ALL[:10], 0.0, key=1)
    m.add_cohort(CohortSpec("unreachable", meters=(4,), start_s=30.0))
    assert m.cohorts[-1].meters == (4,)
    assert np.all(before.outcome == OUTCOME_OK)
    assert same(m.plan(ALL[:10], 0.0, key=1), before)  # not yet active at 0 s
    later = m.plan(ALL[:10], 30.0, key=1)
    assert np.flatnonzero(later.outcome == OUTCOME_TIMEOUT).tolist() == [4]


def test_overlapping_cohorts() -> None:
    cohorts = (
        CohortSpec("slow", meters=(0, 1, 2), factor=2.0),
        CohortSpec("slow", meters=(1, 2), factor=3.0),
        CohortSpec("unreachable", meters=(2,)),
        CohortSpec("flaky", meters=(3, 4), success=0.5),
        CohortSpec("flaky", meters=(4,), success=0.0),
    )
    m = model(cohorts=cohorts, timeout=60.0)
    plan = m.plan(np.arange(6), 0.0, key=1)
    assert plan.outcome[2] == OUTCOME_TIMEOUT  # unreachable wins over slow
    assert plan.rtt_s[:2].tolist() == [2.0, 6.0]  # slow factors multiply
    assert plan.outcome[4] == OUTCOME_FAILED  # the lowest flaky success applies
    assert plan.outcome[5] == OUTCOME_OK
    # flaky replaces the class's success rather than taking the lower of the two
    everyone = model(size=1000, success=0.0, cohorts=(CohortSpec("flaky", fraction=1.0, success=1.0),))
    assert np.all(everyone.plan(np.arange(1000), 0.0, key=1).outcome == OUTCOME_OK)
    half = model(success=1.0, cohorts=(CohortSpec("flaky", fraction=1.0, success=0.5),)).plan(ALL, 0.0, key=2)
    assert np.mean(half.outcome == OUTCOME_FAILED) == pytest.approx(0.5, abs=0.02)
