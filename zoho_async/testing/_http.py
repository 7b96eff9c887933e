"""The aiohttp side: read a request, let the engine decide, apply latency and faults.

One catch-all route, so unknown paths get Zoho's failure envelope instead of aiohttp's
default 404 page, and every request, known or not, is counted.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from ._engine import Engine, Ticket
from ._routes import resolve
from ._wire import JSON_CONTENT_TYPE, Reply

ENGINE_KEY = web.AppKey("engine", Engine)
CLOSING_KEY = web.AppKey("closing", asyncio.Event)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def build_app(engine: Engine, closing: asyncio.Event) -> web.Application:
    app = web.Application()
    app[ENGINE_KEY] = engine
    app[CLOSING_KEY] = closing
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def _handle(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE_KEY]
    route, args = resolve(request.method, request.path)
    query = {key: request.query[key] for key in request.query}
    form: dict[str, str] = {}
    if request.method == "POST" and request.content_type in _FORM_TYPES:
        posted = await request.post()
        form = {key: value for key, value in posted.items() if isinstance(value, str)}
    ticket = engine.arrive(route, args, request.headers, query, form)
    try:
        return await _answer(request, engine, ticket)
    finally:
        engine.depart()


async def _answer(request: web.Request, engine: Engine, ticket: Ticket) -> web.StreamResponse:
    fault = ticket.fault
    if fault is None:
        reply = engine.process(ticket, request.headers)
        await _pause(request, engine.response_delay())
        return _to_response(reply)
    processed = engine.process(ticket, request.headers) if fault.then_process else None
    if not await _pause(request, fault.delay + engine.response_delay()):
        return _shutting_down()
    if fault.drop:
        _drop(request)
    if fault.overrides_answer:
        status, body, headers = fault.render()
        return web.Response(status=status, body=body, headers=headers)
    # A delay-only fault: the request is handled after the delay, unless already done.
    if processed is None:
        processed = engine.process(ticket, request.headers)
    return _to_response(processed)


def _shutting_down() -> web.Response:
    # The server stopped during a scripted delay: do not start work nobody will see.
    return web.Response(status=503, text="FakeZoho is shutting down")


def _to_response(reply: Reply) -> web.Response:
    if reply.payload is None:
        return web.Response(status=reply.status, headers=reply.headers)
    headers = {"Content-Type": JSON_CONTENT_TYPE, **reply.headers}
    return web.Response(
        status=reply.status, body=json.dumps(reply.payload).encode(), headers=headers
    )


async def _pause(request: web.Request, seconds: float) -> bool:
    """Simulated latency; False when cut short because the server is stopping."""
    if seconds <= 0:
        return True
    closing = request.app[CLOSING_KEY]
    try:
        await asyncio.wait_for(closing.wait(), seconds)
    except TimeoutError:
        return True
    return False


def _drop(request: web.Request) -> None:
    """Close the connection with no response at all, as a crashed proxy would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # Ending the handler by cancellation is the one way aiohttp does not try to write a
    # response (and log an error) on the connection we just killed.
    raise asyncio.CancelledError
