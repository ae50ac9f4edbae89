"""The live driver keeps the sim clock in step with the loop clock times the speed."""

from __future__ import annotations

import asyncio

import simpy

from simulator.drivers import LiveDriver, run_fast


def test_live_driver_advances_sim_time_at_speed() -> None:
    env = simpy.Environment()
    fired: list[float] = []

    def ping(env: simpy.Environment):  # type: ignore[no-untyped-def]
        yield env.timeout(100)
        fired.append(env.now)

    env.process(ping(env))

    async def main() -> float:
        driver = LiveDriver(env, speed=1000, tick=0.01)
        driver.start()
        await asyncio.sleep(0.3)
        driver.catch_up()
        now = env.now
        await driver.stop()
        return now

    now = asyncio.run(main())
    # 0.3 s of loop time at 1000x is ~300 sim seconds; allow for a slow, shared machine.
    assert 250 <= now <= 3000
    assert fired == [100]


def test_fast_driver_runs_to_the_horizon_without_waiting() -> None:
    env = simpy.Environment()
    run_fast(env, 86_400 * 365)
    assert env.now == 86_400 * 365


def test_a_failing_event_does_not_stop_the_live_clock(caplog) -> None:  # type: ignore[no-untyped-def]
    env = simpy.Environment()
    seen: list[float] = []

    def broken(env: simpy.Environment):  # type: ignore[no-untyped-def]
        yield env.timeout(10)
        raise RuntimeError("a job callback failed")

    def healthy(env: simpy.Environment):  # type: ignore[no-untyped-def]
        yield env.timeout(20)
        seen.append(env.now)

    env.process(broken(env))
    env.process(healthy(env))

    async def main() -> LiveDriver:
        driver = LiveDriver(env, speed=1000, tick=0.01)
        driver.start()
        await asyncio.sleep(0.2)
        await driver.stop()
        return driver

    driver = asyncio.run(main())
    assert driver.errors == 1 and "a simulation event failed" in caplog.text
    assert seen == [20] and env.now > 100
