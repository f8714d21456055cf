"""The wholesale API's web endpoint: ``API_PATH`` (``/api/v2``) on the bot's web server.

It turns an HTTP request into the request's fields and the service's answer into
JSON (bot/shop/wholesale/api.py decides everything else). Fields come from the
query string and the body, form-encoded (as panels take them), multipart, or a
JSON object; the body's win. A body that can't be read (invalid JSON, JSON that
is no object or escapes half a character, bytes that are no form) is the one
answer with HTTP 400. GET is answered too: some panel clients send everything in
the query string (HEAD is not: 405, bot/app/serving.py).

Nothing of a request is logged: its key is a customer's secret (and a line the
web server writes about a request it can't read has key= values masked,
bot/observability/logs.py). While the bot stops, new requests get 503 and those
under way may finish (``drain``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.observability import metrics
from bot.shop.wholesale.api import WholesaleApi

log = logging.getLogger(__name__)

MAX_FIELD = 100_000  # characters of one field kept (the longest form field takes 20,000)
MALFORMED = "Malformed request body"


class ApiEndpoint:
    def __init__(self, api: WholesaleApi) -> None:
        self.api = api
        self.accepting = True
        self._under_way: set[asyncio.Task[Any]] = set()

    async def handle(self, request: web.Request) -> web.Response:
        if not self.accepting:
            return web.json_response({"error": "The shop is restarting; try again in a minute"},
                                     status=503, headers={"Retry-After": "30"})
        try:
            fields = await _fields(request)
        except ValueError:
            metrics.api_request("", "malformed")
            return web.json_response({"error": MALFORMED}, status=400)
        # Shielded: a client hanging up must not cut an order between its debit and
        # the panel's answer (the task finishes; the answer goes nowhere).
        task = asyncio.ensure_future(self.api.answer(fields))
        self._under_way.add(task)
        task.add_done_callback(self._under_way.discard)
        try:
            answer = await asyncio.shield(task)
        except Exception:
            log.exception("wholesale API: %s failed", fields.get("action", "")[:20])
            return web.json_response({"error": "Internal error; try again later"}, status=500)
        headers = {} if answer.retry_after is None else {"Retry-After": str(answer.retry_after)}
        return web.json_response(answer.body, status=answer.status, headers=headers,
                                 dumps=_dumps)

    async def drain(self, timeout: float) -> None:
        """Stop taking requests; let those under way finish within ``timeout``."""
        self.accepting = False
        if self._under_way:
            await asyncio.wait(set(self._under_way), timeout=timeout)


def _dumps(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


async def _fields(request: web.Request) -> dict[str, str]:
    """The query string's fields, then the body's over them; ``ValueError`` when the
    body can't be read."""
    fields = {key: value for key, value in request.query.items()}
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = json.loads(await request.text())
            except (UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
                raise ValueError("not JSON") from exc
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            # JSON may escape half a character ("\ud800"): that is no text, as bytes that
            # are no UTF-8 are none in a form (and no hash, database or panel takes it).
            try:
                json.dumps(body, ensure_ascii=False).encode()
            except (UnicodeEncodeError, RecursionError) as exc:
                raise ValueError("not Unicode text") from exc
            fields.update({str(key): _scalar(value) for key, value in body.items()
                           if _scalar(value) is not None})
        else:
            try:
                form = await request.post()
            # HttpProcessingError: a multipart part whose headers are no HTTP headers
            # (a control character in a field's name), which aiohttp answered with 500.
            except (UnicodeDecodeError, ValueError, HttpProcessingError) as exc:
                raise ValueError("not a form") from exc
            fields.update({key: value for key, value in form.items() if isinstance(value, str)})
    return {key: value[:MAX_FIELD] for key, value in fields.items()}


def _scalar(value: Any) -> str | None:
    """A JSON value as a form field's text: strings, numbers and booleans; lists of
    ids joined with commas (``"orders": [1, 2]``); anything else is no field."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list) and all(isinstance(v, str | int) and not isinstance(v, bool)
                                       for v in value):
        return ",".join(str(v) for v in value)
    return None
