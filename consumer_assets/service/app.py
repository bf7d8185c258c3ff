"""The HTTP API of the scoring service (Starlette, run by uvicorn): health, score, metrics.

Starlette and uvicorn come with dagster-webserver, which the project depends on already: no new
dependency, and nothing here needs more than routing and a request object (FastAPI would add
pydantic-driven validation, while the events are validated by the raw_events rules themselves).
Each answer is JSON; the work is consumer_assets.serving's. No state is kept from requests.

- GET /v1/health: {"model_version", "histories_day", "profiles"}
- POST /v1/score: {"profile_id", "events": [landing objects], "at": ISO-8601 instant (default now)}
  -> {"profile_id", "probability", "model_version", "histories_day", "explanations"} (+ "reason"
  where probability is null); 400 bad JSON or request, 413 a body over MAX_BODY_BYTES, 422 invalid
  events (their quarantine reasons) or an instant before the state's cut-off.
- GET /metrics: Prometheus text format.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from consumer_assets.service.metrics import Metrics, MetricsMiddleware
from consumer_assets.serving.batching import Batcher
from consumer_assets.serving.posted import InvalidEventsError, posted_events
from consumer_assets.serving.score import Ask, Score, Scorer, TooEarlyError, check_at, score_asks
from consumer_assets.serving.snapshot import Live

# The largest request body accepted: about 3,000 landing events (a busy profile's day is a few hundred).
MAX_BODY_BYTES = 1 << 20
HEALTH, SCORE, METRICS_PATH = "/v1/health", "/v1/score", "/metrics"

_log = logging.getLogger("consumer_assets.service")


class BadRequestError(ValueError):
    def __init__(self, status: int, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.fields = status, fields


def answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequestError(413, f"request body of {declared} bytes is over the limit of {MAX_BODY_BYTES}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequestError(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
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


def create_app(live: Live, metrics: Metrics | None = None) -> Starlette:
    """The service answering from `live`'s current scorer; `live` polls storage while the app runs."""
    metrics = metrics or Metrics()
    batcher: Batcher[tuple[Scorer, Ask], Score] = Batcher(score_asks)

    async def health(request: Request) -> Response:
        scorer = live.current
        return answer(scorer.describe())

    async def score(request: Request) -> Response:
        try:
            profile_id, objects, at_ms = parse_request(await read_body(request))
            scorer = live.current  # one scorer for the whole request, whatever a swap does meanwhile
            at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
            start_ms = check_at(scorer.state.day, at_ms)
            events = posted_events(objects, profile_id, start_ms, at_ms)
            # Scored with the asks of other requests that arrive meanwhile (serving.batching); the
            # asker is the connection (its client address), whose next ask the next pass may wait for.
            result = await batcher.submit((scorer, Ask(profile_id, events, at_ms)), request.scope.get("client"))
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

    async def prometheus(request: Request) -> Response:
        scorer = live.current
        info = {"model_version": scorer.model_version, "histories_day": scorer.histories_day}
        text = metrics.render(info, scorer.state.profiles, batcher.batches, batcher.items)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live.start()
        try:
            yield
        finally:
            live.stop()

    routes = [Route(HEALTH, health), Route(SCORE, score, methods=["POST"]), Route(METRICS_PATH, prometheus)]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes={HEALTH, SCORE, METRICS_PATH})
    return app
