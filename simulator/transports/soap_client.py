"""Outbound SOAP 1.1: POST a 61968 message to the MDMS and say whether it was accepted.

The outbox retries whatever this reports as not ok, so the one rule here is that `send` never
raises: a refused connection, a reset, a timeout, an HTTP 500 or an answer that is not the
acknowledgement asked for all come back as `DeliveryResult(ok=False, error=...)`. Only
cancellation propagates, so that stopping the deliverer stops a send.

The sender moves bytes: it wraps the message in a SOAP 1.1 envelope (the binding every public
61968-9 WSDL uses) and does not read it. Whether an answer acknowledges the message is a 61968
question, so the head-end injects that check (`ack_check`) instead of this module parsing replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp

from simulator.cim.soap import CONTENT_TYPE_SOAP11, wrap
from simulator.ports import DeliveryResult

_ERROR_BODY_CHARS = 200


def _strip_declaration(body: bytes) -> bytes:
    """An XML declaration inside a SOAP Body is not well-formed, so a message that has one loses it."""
    stripped = body.lstrip()
    if stripped.startswith(b"<?xml"):
        end = stripped.find(b"?>")
        if end >= 0:
            return stripped[end + 2 :].lstrip()
    return body


def _describe(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text != exc.__class__.__name__ else text


class SoapSender:
    """One aiohttp ClientSession per sender (connections are reused), created on the first send.

    The session is made lazily because aiohttp binds it to the running loop, and a sender is
    usually constructed before the loop starts.
    """

    def __init__(self, timeout_s: float = 30.0, ack_check: Callable[[bytes], bool] | None = None) -> None:
        self.timeout_s = timeout_s
        self.ack_check = ack_check
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                # A head-end talks to one MDMS; keep-alive connections save a handshake per message.
                connector=aiohttp.TCPConnector(limit=100, enable_cleanup_closed=True),
            )
        return self._session

    async def send(self, destination: str, soap_action: str, body: bytes, ack_required: bool) -> DeliveryResult:
        """POST `body` in a SOAP 1.1 envelope; ok = 2xx, and the ack check passes when an ack was asked for."""
        headers = {
            "Content-Type": CONTENT_TYPE_SOAP11,
            # SOAP 1.1 requires the SOAPAction value to be a quoted string (an empty one is "").
            "SOAPAction": f'"{soap_action}"',
        }
        data = wrap(_strip_declaration(body), "1.1")
        try:
            async with self._client().post(destination, data=data, headers=headers) as response:
                answer = await response.read()
                status = response.status
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return DeliveryResult(False, None, f"no answer within {self.timeout_s:g} s from {destination}", None)
        except aiohttp.InvalidURL as exc:
            return DeliveryResult(False, None, f"invalid destination URL {str(exc.url)!r}", None)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return DeliveryResult(False, None, f"{destination}: {_describe(exc)}", None)
        if not 200 <= status < 300:
            snippet = answer[:_ERROR_BODY_CHARS].decode("utf-8", "replace")
            return DeliveryResult(False, status, f"HTTP {status} from {destination}: {snippet}", answer)
        if ack_required and self.ack_check is not None:
            try:
                acknowledged = bool(self.ack_check(answer))
            except Exception as exc:  # an injected check must not break delivery
                return DeliveryResult(False, status, f"ack check raised {_describe(exc)}", answer)
            if not acknowledged:
                return DeliveryResult(False, status, "acknowledgement required but the answer is not one", answer)
        return DeliveryResult(True, status, None, answer)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
