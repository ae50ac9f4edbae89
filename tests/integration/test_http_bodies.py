"""Bodies as networks deliver them: split across writes, chunked, large, or over the limit."""

from __future__ import annotations

import socket
import time

import pytest

from .server import INSTANT_COMMS, running_simulator

pytestmark = pytest.mark.integration


def _request(meters: int) -> bytes:
    devices = "".join(f"<q:EndDevice><q:Names><q:name>NOPE{i:07d}</q:name></q:Names></q:EndDevice>"
                      for i in range(meters))
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        '<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message"><m:Header><h:Verb>get</h:Verb><h:Noun>MeterReadings</h:Noun>'
        '</m:Header><m:Request><q:GetMeterReadings xmlns:q="http://iec.ch/TC57/2011/GetMeterReadings#">'
        f"{devices}</q:GetMeterReadings></m:Request></m:GetMeterReadings></s:Body></s:Envelope>"
    ).encode()


def _post(base: str, head: bytes, parts: list[bytes], pause: float = 0.0) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        for part in parts:
            sock.sendall(part)
            time.sleep(pause)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_bodies_split_chunked_or_large_are_read_whole_and_oversize_gets_a_fault() -> None:
    with running_simulator("--meters", "100", "--set", INSTANT_COMMS,
                           "--set", "headend.max_request_bytes=4000000") as (base, _):
        body = _request(1000)  # ~90 KB: unknown meters, a well-formed request
        head = (f"POST /GetMeterReadings HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        split = _post(base, head, [body[: len(body) // 2], body[len(body) // 2:]], pause=0.3)
        assert split.startswith(b"HTTP/1.1 200") and b"FAILED" in split and b"2.4" in split
        chunked = (b"POST /GetMeterReadings HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        pieces = [b"%x\r\n%s\r\n" % (len(body[i:i + 7000]), body[i:i + 7000]) for i in range(0, len(body), 7000)]
        answer = _post(base, chunked, [*pieces, b"0\r\n\r\n"], pause=0.01)
        assert answer.startswith(b"HTTP/1.1 200") and b"FAILED" in answer
        big = _request(30000)  # ~2 MB in one write: every one of its meters is answered for
        assert 1_500_000 < len(big) < 4_000_000
        head = (f"POST /GetMeterReadings HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
                f"Content-Length: {len(big)}\r\nConnection: close\r\n\r\n").encode()
        answer = _post(base, head, [big])
        assert answer.startswith(b"HTTP/1.1 200") and answer.count(b">2.4<") == 30000
        huge = _request(80000)  # past the limit, chunked (no Content-Length to refuse it early)
        assert len(huge) > 4_000_000
        pieces = [b"%x\r\n%s\r\n" % (len(huge[i:i + 65536]), huge[i:i + 65536]) for i in range(0, len(huge), 65536)]
        answer = _post(base, chunked, [*pieces, b"0\r\n\r\n"])
        assert answer.startswith(b"HTTP/1.1 500") and b"1.8" in answer and b"too large" in answer
