"""The head-end over JMS with a real ActiveMQ broker: every reply pattern, bad messages, event topics.

The simulator runs in this process (started as `hes-sim run` starts it); the MDMS side is a
STOMP client. Every message is checked as a Java JMS client would see it (TextMessage body = the
bare 61968 message, JMSCorrelationID, Verb/Noun properties) and validated against our profiles.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import stomp

from tests.headend.requests import control, controls_request, generic_get, get_events, get_profile, typed_get

from .jms_harness import DAY, REG, Client, Names, jms_simulator, problems, seen

pytestmark = pytest.mark.integration


def feeder(served, name: str = "FEEDER-01") -> list[str]:
    fleet = served.sim.fleet
    return list(fleet.mrids(fleet.group_members(fleet.group_by_name(name))))


async def test_sync_reads_answer_on_reply_to_with_jms_headers(tmp_path: Path, broker_port: int,
                                                             client: Client) -> None:
    names = Names()
    replies = names.queue("replies")
    client.listen(replies)
    async with jms_simulator(tmp_path, broker_port, names) as served:
        meters = feeder(served)
        profile = get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY)
        await client.send(names.requests, generic_get(profile, correlation_id="c-generic").encode(),
                          reply_to=replies)
        generic = await client.get(replies)
        await client.send(names.requests, typed_get(profile, correlation_id="c-typed").encode(), reply_to=replies)
        typed = await client.get(replies)
    g, t = seen(generic.body), seen(typed.body)
    assert (g.root, g.verb, g.noun, g.result, g.correlation_id) == (
        "ResponseMessage", "reply", "MeterReadings", "OK", "c-generic")
    assert generic.correlation_id == "c-generic"  # JMSCorrelationID = Header/CorrelationID
    assert generic.properties["Verb"] == "reply" and generic.properties["Noun"] == "MeterReadings"
    assert sorted(g.meters) == sorted(meters)
    assert problems(generic.body) == []
    assert not generic.body.lstrip().startswith(b"<soap")  # no SOAP envelope on JMS
    assert (t.root, t.correlation_id, typed.correlation_id) == ("MeterReadingsResponseMessage", "c-typed", "c-typed")
    assert problems(typed.body) == []
    assert sorted(t.meters) == sorted(meters)


async def test_async_read_in_parts_goes_to_reply_address_after_the_acceptance(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    replies, results = names.queue("replies"), names.queue("results")
    client.listen(replies)
    client.listen(results)
    async with jms_simulator(tmp_path, broker_port, names, "replies.part_size=20") as served:
        meters = feeder(served)  # 50 meters: parts of 20, 20, 10
        profile = get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY,
                              meters=["no-such-meter"])
        await client.send(names.requests, typed_get(profile, correlation_id="c-async", reply_address=results).encode(),
                          reply_to=replies)
        accepted = seen((await client.get(replies)).body)
        parts = await client.get_n(results, 3)
        assert await client.nothing_on(results, 0.5)
    assert accepted.result == "PARTIAL" and "2.4" in accepted.codes  # the unknown meter, at once
    assert accepted.correlation_id == "c-async"
    got = [seen(p.body) for p in parts]
    assert [s.message_index for s in got] == ["1/3", "2/3", "3/3"]  # in order, as over SOAP
    assert [len(s.meters) for s in got] == [20, 20, 10]
    assert sorted(m for s in got for m in s.meters) == sorted(meters)
    assert all(p.correlation_id == "c-async" and p.properties["Noun"] == "MeterReadings" for p in parts)
    assert all(problems(p.body) == [] for p in parts)


async def test_async_read_without_reply_address_goes_to_jms_reply_to(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    replies = names.queue("replies")
    client.listen(replies)
    async with jms_simulator(tmp_path, broker_port, names) as served:
        meters = feeder(served, "FEEDER-02")
        body = typed_get(get_profile(groups=["FEEDER-02"], reading_types=[REG], period=DAY),
                         correlation_id="c-rt", reply_address="").replace(
            "<h:ReplyAddress></h:ReplyAddress>", "")
        await client.send(names.requests, body.encode(), reply_to=replies)
        first, second = await client.get_n(replies, 2)
    assert seen(first.body).result == "OK" and seen(first.body).meters == ()  # the acceptance first
    assert sorted(seen(second.body).meters) == sorted(meters)


async def test_disconnect_answers_and_its_events_arrive_on_reply_to(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    replies = names.queue("replies")
    client.listen(replies)
    async with jms_simulator(tmp_path, broker_port, names) as served:
        meters = feeder(served)[:3]
        body = controls_request("Create", [control("3.31.0.23", meters=meters)], correlation_id="c-ctl")
        await client.send(names.requests, body.encode(), reply_to=replies)
        got = [seen(m.body) for m in await client.get_n(replies, 3)]
        disconnected = served.sim.relay.counts()
    answer, events, final = got
    assert (answer.root, answer.result) == ("EndDeviceControlsResponseMessage", "OK")
    assert events.root == "CreatedEndDeviceEvents"
    assert sorted(m for m, _ in events.events) == sorted(meters)
    assert {t for _, t in events.events} == {"3.31.0.68"}  # remote disconnect done
    assert final.root == "EndDeviceControlsResponseMessage" and final.result == "OK"
    assert all(s.correlation_id == "c-ctl" for s in got)
    assert disconnected.get("disconnected") == 3, disconnected


async def test_bad_messages_are_answered_or_dead_lettered_and_the_consumer_goes_on(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    replies = names.queue("replies")
    client.listen(replies)
    client.listen(names.dead_letters)
    profile = get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY)
    async with jms_simulator(tmp_path, broker_port, names):
        await client.send(names.requests, b"this is not XML", correlation_id="c-junk", reply_to=replies)
        await client.send(names.requests, generic_get(profile, noun="Bananas", correlation_id="c-noun").encode(),
                          reply_to=replies)
        await client.send(names.requests, generic_get(profile, verb="delete", correlation_id="c-verb").encode(),
                          correlation_id="c-verb", properties={"Verb": "delete", "Noun": "MeterReadings"})
        await client.send(names.requests, b"<half", correlation_id="c-lost")
        await client.send(names.requests, typed_get(profile, correlation_id="c-after").encode(), reply_to=replies)
        answers = {m.correlation_id: (m, seen(m.body)) for m in await client.get_n(replies, 3)}
        dead = await client.get_n(names.dead_letters, 2)
    junk, noun, after = answers["c-junk"][1], answers["c-noun"][1], answers["c-after"][1]
    assert (junk.root, junk.result, junk.codes) == ("ResponseMessage", "FAILED", ("1.8",))
    assert (noun.noun, noun.result, noun.codes) == ("Bananas", "FAILED", ("2.5",))
    assert all(problems(m.body) == [] for m, _ in (answers["c-junk"], answers["c-noun"]))
    assert after.result == "OK" and len(after.meters) == 50  # the consumer kept going
    by_correlation = {m.correlation_id: m for m in dead}
    assert set(by_correlation) == {"c-verb", "c-lost"}
    assert by_correlation["c-lost"].body == b"<half"  # the message as it came, kept
    assert by_correlation["c-verb"].properties["DeadLetterReason"].startswith("2.9 ")
    assert by_correlation["c-lost"].properties["DeadLetterReason"].startswith("1.8 ")
    assert by_correlation["c-verb"].properties["OriginalDestination"] == names.requests


async def test_get_end_device_events_over_jms(tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    replies = names.queue("replies")
    client.listen(replies)
    async with jms_simulator(tmp_path, broker_port, names,
                             "timeline=[{at_s: 0, action: storm, group: FEEDER-03, within_s: 1}]") as served:
        meters = feeder(served, "FEEDER-03")
        client.listen(names.events_topic("EndDeviceEvents"))
        await client.get(names.events_topic("EndDeviceEvents"))  # the storm happened
        body = get_events(types=["3.12.43.257"], period=("2026-03-10T11:00:00Z", "2026-03-10T13:00:00Z"))
        await client.send(names.requests, body.encode(), reply_to=replies)
        answer = await client.get(replies)
    got = seen(answer.body)
    assert (got.root, got.result) == ("EndDeviceEventsResponseMessage", "OK")
    assert sorted(m for m, _ in got.events) == sorted(meters)
    assert problems(answer.body) == []


async def test_unsolicited_events_and_readings_go_to_a_topic_per_noun(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    events_topic, readings_topic = names.events_topic("EndDeviceEvents"), names.events_topic("MeterReadings")
    client.listen(events_topic)
    client.listen(readings_topic)
    timeline = ("timeline=[{at_s: 1, action: storm, group: FEEDER-04, event_type: 3.12.43.257, within_s: 1},"
                " {at_s: 1, action: push, push: hourly}]")
    pushes = "pushes=[{name: hourly, every: hourly, group: FEEDER-04, batch_meters: 100, window_s: 0}]"
    async with jms_simulator(tmp_path, broker_port, names, timeline, pushes) as served:
        meters = feeder(served, "FEEDER-04")
        event_msg = await client.get(events_topic)
        reading_msg = await client.get(readings_topic)
    ev, rd = seen(event_msg.body), seen(reading_msg.body)
    assert (ev.root, ev.verb, ev.noun) == ("CreatedEndDeviceEvents", "created", "EndDeviceEvents")
    assert event_msg.properties == {"Verb": "created", "Noun": "EndDeviceEvents"} | {
        k: v for k, v in event_msg.properties.items() if k not in ("Verb", "Noun")}
    assert event_msg.correlation_id == ev.correlation_id
    assert sorted(m for m, _ in ev.events) == sorted(meters)
    assert (rd.verb, rd.noun) == ("created", "MeterReadings") and sorted(rd.meters) == sorted(meters)
    assert reading_msg.properties["Noun"] == "MeterReadings"


async def test_an_answer_to_a_temporary_queue_that_is_gone_is_dead_at_once_not_retried(
        tmp_path: Path, broker_port: int) -> None:
    names = Names()
    requester = stomp.Connection12([("127.0.0.1", broker_port)], auto_content_length=False)
    requester.connect(wait=True)
    requester.subscribe("/temp-queue/answers", id="t")
    body = typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY), correlation_id="c-t")
    async with jms_simulator(tmp_path, broker_port, names, "clock.speed=1") as served:
        requester.send(names.requests.replace("queue://", "/queue/"), body,
                       headers={"reply-to": "/temp-queue/answers"})
        requester.disconnect()  # gone before the meters answer (1 s away): its temporary queue dies with it
        outbox = served.delivery.outbox
        for _ in range(200):
            if outbox.stats()["dead"] == 1:
                break
            await asyncio.sleep(0.05)
        stats = outbox.stats()
    assert stats["dead"] == 1 and stats["queued"] == 0 and stats["retried"] == 0


async def test_a_request_in_hand_at_shutdown_is_answered_once_and_not_served_again(
        tmp_path: Path, broker_port: int, client: Client) -> None:
    names = Names()
    replies = names.queue("replies")
    client.listen(replies)
    body = typed_get(get_profile(groups=["FEEDER-01"], reading_types=[REG], period=DAY), correlation_id="c-stop")
    async with jms_simulator(tmp_path, broker_port, names, "clock.speed=0.5") as served:
        await client.send(names.requests, body.encode(), reply_to=replies)
        for _ in range(100):  # taken from the queue; its meters answer only 2 s from now
            if served.consumer is not None and served.consumer.consumed:
                break
            await asyncio.sleep(0.02)
        assert served.consumer is not None and served.consumer.consumed == 1
    # The same outbox and queue again: an answer not yet delivered is delivered now, the request is
    # not taken again (it was acknowledged with its answer when the first run stopped).
    async with jms_simulator(tmp_path, broker_port, names):
        first = seen((await client.get(replies)).body)
        while not await client.nothing_on(replies, 2.0):
            pass
        more = [seen(m.body) for m in client.drain(replies)]
    assert first.correlation_id == "c-stop" and first.root == "MeterReadingsResponseMessage"
    assert more == []  # served once: no second answer from a second run
