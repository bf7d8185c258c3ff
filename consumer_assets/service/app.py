"""The HTTP API of the scoring service: a plain ASGI application, served by uvicorn: health, score, metrics.

uvicorn (with httptools, its C HTTP parser) comes with dagster-webserver, which the project depends
on already. The three routes need nothing of a web framework but a path and a method, and the
service answers under load from two shared cores: Starlette's request, response, routing and
error-middleware objects cost about 75 microseconds of CPU a request here (175 against 250, a
uvicorn answer alone), a tenth of a scored request's CPU. So this module reads the body, routes
and answers itself; the events are validated by the raw_events rules themselves (no pydantic).
Each answer is JSON; the work is consumer_assets.serving's. No state is kept from requests.

- GET /v1/health: {"model_version", "histories_day", "profiles"}
- POST /v1/score: {"profile_id", "events": [landing objects], "at": ISO-8601 instant (default now)}
  -> {"profile_id", "probability", "model_version", "histories_day", "explanations"} (+ "reason"
  where probability is null); 400 bad JSON or request, 413 a body over MAX_BODY_BYTES, 422 invalid
  events (their quarantine reasons) or an instant before the state's cut-off.
- GET /metrics: Prometheus text format.
Any other path: 404; another method: 405; an unexpected error: 500 (logged). Every request is
counted and timed in the metrics under its route ("other" for unknown paths).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from consumer_assets.service.metrics import Metrics
from consumer_assets.serving.batching import Batcher
from consumer_assets.serving.posted import InvalidEventsError, posted_events
from consumer_assets.serving.score import Ask, Score, Scorer, TooEarlyError, check_at, score_asks
from consumer_assets.serving.snapshot import Live

# The largest request body accepted: about 3,000 landing events (a busy profile's day is a few hundred).
MAX_BODY_BYTES = 1 << 20
HEALTH, SCORE, METRICS_PATH = "/v1/health", "/v1/score", "/metrics"
JSON, PROMETHEUS = b"application/json", b"text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# An answer: status, body, content type, extra headers.
Answer = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]

_log = logging.getLogger("consumer_assets.service")


class BadRequestError(ValueError):
    def __init__(self, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.fields = status, fields


def answer(body: dict[str, Any], status: int = 200) -> Answer:
    return status, orjson.dumps(body), JSON, []


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body; BadRequestError (413) as soon as it is known to be over MAX_BODY_BYTES."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
            raise BadRequestError(413, f"request body of {value.decode()} bytes is over the limit of {MAX_BODY_BYTES}")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequestError(400, "the client went away before the body was read")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequestError(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def parse_request(body: bytes) -> tuple[str, list[Any], int | None]:
    """(profile_id, events, at in epoch ms or None for now) of a score request; BadRequestError if malformed."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(400, f"the body is not JSON: {exc}") from None
    if type(payload) is not dict:
        raise BadRequestError(400, f"the body must be a JSON object, not a {type(payload).__name__}")
    profile_id, events, at = payload.get("profile_id"), payload.get("events", []), payload.get("at")
    if type(profile_id) is not str or not profile_id:
        raise BadRequestError(400, "profile_id must be a non-empty string")
    if type(events) is not list:
        raise BadRequestError(400, "events must be a list of landing events (JSON objects)")
    if at is None:
        return profile_id, events, None
    try:
        instant = dt.datetime.fromisoformat(at) if type(at) is str else None
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise BadRequestError(400, f"at must be an ISO-8601 instant with a time zone, got {str(at)[:64]!r}")
    return profile_id, events, (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def create_app(live: Live, metrics: Metrics | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The service (an ASGI application) answering from `live`'s current scorer; `live` polls storage
    while the app runs (from the lifespan's start to its end)."""
    metrics = metrics or Metrics()
    batcher: Batcher[tuple[Scorer, Ask], Score] = Batcher(score_asks)

    def health() -> Answer:
        return answer(live.current.describe())

    async def score(scope: Scope, receive: Receive) -> Answer:
        profile_id = None
        try:
            profile_id, objects, at_ms = parse_request(await read_body(scope, receive))
            scorer = live.current  # one scorer for the whole request, whatever a swap does meanwhile
            at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
            start_ms = check_at(scorer.state.day, at_ms)
            events = posted_events(objects, profile_id, start_ms, at_ms)
            # Scored with the asks of other requests that arrive meanwhile (serving.batching); the
            # asker is the connection (its client address), whose next ask the next pass may wait for.
            result = await batcher.submit((scorer, Ask(profile_id, events, at_ms)), scope.get("client"))
        except BadRequestError as exc:
            _log.info("refused", extra={"fields": {"status": exc.status, "reason": str(exc)}})
            return answer({"error": str(exc), **exc.fields}, exc.status)
        except InvalidEventsError as exc:
            problems = [p.to_dict() for p in exc.problems]
            fields = {"status": 422, "profile_id": profile_id, "problems": problems[:3]}
            _log.info("invalid events", extra={"fields": fields})
            return answer({"error": str(exc), "problems": problems}, 422)
        except TooEarlyError as exc:
            return answer({"error": str(exc), "reason": "at_before_cutoff"}, 422)
        return answer(result.to_dict())

    def prometheus() -> Answer:
        scorer = live.current
        info = {"model_version": scorer.model_version, "histories_day": scorer.histories_day}
        text = metrics.render(info, scorer.state.profiles, batcher.batches, batcher.items)
        return 200, text.encode(), PROMETHEUS, []

    async def respond(scope: Scope, receive: Receive) -> Answer:
        path, method = scope["path"], scope["method"]
        allowed = b"POST" if path == SCORE else b"GET" if path in (HEALTH, METRICS_PATH) else None
        if allowed is None:
            return answer({"error": f"no such path: {path[:200]}"}, 404)
        if method.encode() != allowed:
            status, body, kind, _ = answer({"error": f"{method} is not allowed on {path}"}, 405)
            return status, body, kind, [(b"allow", allowed)]
        if path == SCORE:
            return await score(scope, receive)
        return health() if path == HEALTH else prometheus()

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    live.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                live.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets
        started = time.perf_counter()
        try:
            status, body, kind, headers = await respond(scope, receive)
        except Exception:
            _log.exception("failed", extra={"fields": {"path": scope["path"][:200]}})
            status, body, kind, headers = answer({"error": "internal error"}, 500)
        try:
            headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *headers]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            route = scope["path"] if scope["path"] in (HEALTH, SCORE, METRICS_PATH) else "other"
            metrics.observe(route, status, time.perf_counter() - started)

    return app
