"""The request queue: messages from the broker handed to the head-end on the event loop.

stomp.py calls us on its receiver thread; the head-end lives on the asyncio loop. Each message
crosses with `call_soon_threadsafe` and is served as its own task, so slow requests (a sync read
waits for its meters) do not hold up quick ones, and the receiver thread never waits. How many
requests are in flight at once is bounded by the broker: `prefetch` unacknowledged messages at
most (ActiveMQ's `activemq.prefetchSize`), past which it keeps the rest on the queue.

Acknowledgement is per message (`client-individual`) and comes last: after the head-end has
stored the answer in its outbox, or after the message was copied to the dead-letter queue. A
message we die holding is redelivered by the broker (at least once, like the outbox).

Dead letters are sent by us, not by a STOMP NACK: ActiveMQ 5 would move a NACKed persistent
message to `ActiveMQ.DLQ` but drop a non-persistent one, and it would not say why. Ours keep the
body and carry string properties `DeadLetterReason`, `OriginalDestination`, `OriginalMessageID`
(and the original JMSCorrelationID and properties).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from simulator.ports import Disposition, MessagePort, QueuedRequest

from .jms import JmsConnection, JmsError, JmsMessage

log = logging.getLogger(__name__)


class JmsConsumer:
    def __init__(self, connection: JmsConnection, destination: str, port: MessagePort,
                 dead_letter_queue: str, prefetch: int = 100) -> None:
        self.connection = connection
        self.destination = destination
        self.port = port
        self.dead_letter_queue = dead_letter_queue
        self.prefetch = prefetch
        self.consumed = 0
        self.dead_lettered = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False  # set at shutdown: new arrivals are left unacked for the next run
        self._tasks: set[asyncio.Task[None]] = set()
        # Acks and dead letters wait for the socket or a receipt: off the loop, in order.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jms-consumer")

    async def start(self) -> None:
        """Subscribe (waits for the broker's receipt); raises JmsError when the broker is not there."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(self._executor, lambda: self.connection.subscribe(
            self.destination, self._on_message, ack="client-individual",
            headers={"activemq.prefetchSize": str(self.prefetch)}))

    def _on_message(self, msg: JmsMessage) -> None:
        """On stomp.py's thread: hand over and return at once."""
        loop = self._loop
        if loop is None or self._closing:
            return  # not acked: the broker redelivers it once this connection closes
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the same
            loop.call_soon_threadsafe(self._spawn, msg)

    def _spawn(self, msg: JmsMessage) -> None:
        if self._closing:
            return
        task = asyncio.get_running_loop().create_task(self._serve(msg), name=f"jms {msg.message_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, msg: JmsMessage) -> None:
        self.consumed += 1
        request = QueuedRequest(body=msg.body, destination=msg.destination, reply_to=msg.reply_to,
                                correlation_id=msg.correlation_id, message_id=msg.message_id,
                                properties=dict(msg.properties), redelivered=msg.redelivered)
        try:
            disposition = await self.port.handle_message(request)
        except asyncio.CancelledError:
            raise  # stopping: not acked, so the broker redelivers it
        except Exception as exc:  # the port promises not to raise; if it does, keep the message
            log.exception("serving JMS message %s failed", msg.message_id)
            disposition = Disposition(dead_letter=f"internal error: {exc.__class__.__name__}")
        loop = asyncio.get_running_loop()
        if disposition.dead_letter is not None:
            try:
                await loop.run_in_executor(self._executor, self._dead_letter, msg, disposition.dead_letter)
            except (JmsError, ValueError) as exc:
                # ActiveMQ redelivers an unacknowledged message only when its connection ends.
                log.error("JMS message %s not moved to %s (%s); reconnecting so that it is redelivered",
                          msg.message_id, self.dead_letter_queue, exc)
                self.connection.drop()
                return
            self.dead_lettered += 1
            log.warning("JMS message %s moved to %s: %s", msg.message_id, self.dead_letter_queue,
                        disposition.dead_letter)
        await loop.run_in_executor(self._executor, self.connection.ack, msg)

    def _dead_letter(self, msg: JmsMessage, reason: str) -> None:
        properties = {k: v for k, v in msg.properties.items() if k.isidentifier()
                      and k not in ("DeadLetterReason", "OriginalDestination", "OriginalMessageID")}
        properties.update({"DeadLetterReason": reason[:1000], "OriginalDestination": msg.destination,
                           "OriginalMessageID": msg.message_id})
        body = msg.body.replace(b"\x00", b"")  # a NUL cannot travel in a STOMP text frame
        self.connection.send(self.dead_letter_queue, body, msg.correlation_id, None, properties)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def stop_taking(self) -> None:
        """Serve nothing new; what arrives from now on stays unacknowledged and goes back to the
        queue when the connection closes. No UNSUBSCRIBE: ActiveMQ ignores acks for a
        subscription that is gone, so the requests still in hand would be served twice."""
        self._closing = True

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking messages, give those in hand `timeout_s` to finish (and be acknowledged),
        cancel the rest (redelivered later). The caller closes the connection after this."""
        self.stop_taking()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self._executor.shutdown(wait=True)
