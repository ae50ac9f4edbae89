"""The HTTP side of SOAP: aiohttp routes that hand bodies to a SoapPort and return its answer."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..ports import ControlPort, SoapPort

_TEXT = "text/plain; charset=utf-8"
_XML = "text/xml; charset=utf-8"


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def make_app(port: SoapPort, control: ControlPort | None = None) -> web.Application:
    # aiohttp would answer an oversized body with a bare 413; we read with our own limit
    # instead so the MDMS gets a SOAP fault with a 61968-100 code.
    app = web.Application(client_max_size=port.max_request_bytes)
    services = port.service_names()

    async def index(_request: web.Request) -> web.Response:
        lines = ["hes-sim SOAP endpoints:"]
        lines += [f"  POST /{s}    WSDL: /{s}?wsdl" for s in services]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def get_service(request: web.Request) -> web.Response:
        name = request.match_info["service"]
        if name not in services:
            raise web.HTTPNotFound(text=f"no service {name!r}; try one of {', '.join(services)}\n")
        if "wsdl" in {k.lower() for k in request.query}:
            body = port.wsdl(name, _base_url(request))
            if body is None:
                raise web.HTTPNotFound(text=f"no WSDL for {name}\n")
            return web.Response(body=body, headers={"Content-Type": _XML})
        return web.Response(text=f"POST SOAP 1.1 requests to /{name}; the WSDL is at /{name}?wsdl\n",
                            headers={"Content-Type": _TEXT})

    async def get_xsd(request: web.Request) -> web.Response:
        body = port.xsd(request.match_info["name"])
        if body is None:
            raise web.HTTPNotFound(text="no such schema\n")
        return web.Response(body=body, headers={"Content-Type": _XML})

    async def post_service(request: web.Request) -> web.Response:
        name = request.match_info["service"]
        if name not in services:
            raise web.HTTPNotFound(text=f"no service {name!r}; try one of {', '.join(services)}\n")
        content_type = request.headers.get("Content-Type", "")
        declared = request.content_length
        if declared is not None and declared > port.max_request_bytes:
            answer = port.too_large(name, content_type, declared)
        else:
            try:
                # The whole body, however many TCP segments it arrives in; aiohttp stops at
                # client_max_size (chunked bodies have no Content-Length to check first).
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                answer = port.too_large(name, content_type, None)
            else:
                answer = await port.handle(name, request.headers.get("SOAPAction"), content_type, body)
        if answer.reset and request.transport is not None:
            request.transport.abort()  # the client sees its connection reset, no HTTP answer
            raise asyncio.CancelledError
        return web.Response(status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type})

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def post_control(request: web.Request) -> web.Response:
        assert control is not None
        answer = await control.control(await request.read())
        return web.Response(status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type})

    if control is not None:
        app.router.add_post("/control", post_control)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/xsd/{name}", get_xsd)
    app.router.add_get("/{service}", get_service)
    app.router.add_post("/{service}", post_service)
    return app
