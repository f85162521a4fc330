"""A job's live view: the Server-Sent Events stream of its curve, status and end."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import ReadSessionFactoryDep, SettingsDep, TenantDep
from app.api.jobs import progress, summary
from app.errors import NotFound
from app.job_status import JobStatus
from app.schemas.common import MAX_INDEX, PLAIN_INT, error_responses
from app.schemas.jobs import DEFAULT_CURVE_POINTS
from app.store import history, jobs

router = APIRouter(tags=["live"], responses=error_responses(400, 401, 404, 422))

# Browsers reconnect after this long when a stream drops mid-job (the SSE `retry:` field).
RETRY_MILLISECONDS = 2000
# A comment line this often keeps proxies and load balancers from closing an idle stream.
KEEPALIVE_SECONDS = 15.0
# A stream resumed far back catches up a page of points per read, never the whole curve at once.
EVENT_PAGE_POINTS = 10_000

EVENTS_DOC = """\
One stream per job, `text/event-stream`. Events, in order:

* `snapshot` (id = its last iteration): first, on a stream opened without `Last-Event-ID` or
  `?since`: the curve so far as one event, `{"points": [...], "thinned", "points_total"}`,
  thinned to at most 2,000 real recorded points like `GET /jobs/{id}`;
* `point` (id = the iteration): one per history point after that, each exactly once;
* `status`: the job's status and progress, whenever they change;
* `end`: the job's final summary once it is terminal; then the stream closes.

Reconnecting with `Last-Event-ID` (browsers do it for you) resumes after that iteration, with
no snapshot; `?since=N` does the same for clients that cannot set headers (`?since=0` replays
every point as `point` events).
"""


@dataclass(frozen=True)
class Snapshot:
    """What one poll of the database saw: the job's state and its points after `since`."""

    status: JobStatus
    progress: float
    last_iteration: int
    n_iterations: int
    summary: dict[str, Any]
    points: list[dict[str, Any]]
    # The page of points was full: more are stored after it, read them before sleeping.
    more: bool = False
    # The thinned curve so far, read for a stream's opening `snapshot` event.
    curve: history.Curve | None = None


def read_snapshot(
    factory: sessionmaker[Session], tenant: str, job_id: str, since: int, *, thinned: bool = False
) -> Snapshot:
    # A fresh, short session per poll: no transaction stays open while the stream sleeps.
    with factory() as session:
        job = jobs.get_job(session, tenant, job_id)
        # The worker writes a job's last points before it marks the job terminal, so reading
        # the job first guarantees a terminal snapshot already holds every point.
        snapshot_summary = summary(job).model_dump(mode="json")
        status, last_iteration, n_iterations = (
            JobStatus(job.status),
            job.last_iteration,
            job.n_iterations,
        )
        job_progress = progress(job)
        if thinned:
            curve = history.read_curve(session, job_id, max_points=DEFAULT_CURVE_POINTS)
            points: list[dict[str, Any]] = []
            more = False
        else:
            curve = None
            page = history.read_page(session, job_id, since=since, limit=EVENT_PAGE_POINTS)
            points, more = page.points, page.next_since is not None
    return Snapshot(
        status, job_progress, last_iteration, n_iterations, snapshot_summary, points, more, curve
    )


def format_event(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, separators=(',', ':'))}")
    return "\n".join(lines) + "\n\n"


async def job_event_stream(
    request: Request,
    factory: sessionmaker[Session],
    tenant: str,
    job_id: str,
    first: Snapshot,
    since: int,
    poll_seconds: float,
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    snapshot = first
    last_state: tuple[JobStatus, int] | None = None
    last_write = time.monotonic()
    chunk = []
    if first.curve is not None:
        curve = first.curve
        last_id = curve.points[-1]["iteration"] if curve.points else None
        data = {"points": curve.points, "thinned": curve.thinned, "points_total": curve.total}
        chunk.append(format_event("snapshot", data, event_id=last_id))
        since = last_id if last_id is not None else since
    while True:
        # One chunk per poll: a fast job adds hundreds of points between polls.
        chunk.extend(format_event("point", p, event_id=p["iteration"]) for p in snapshot.points)
        if snapshot.points:
            since = snapshot.points[-1]["iteration"]
        if not snapshot.more:
            state = (snapshot.status, snapshot.last_iteration)
            if state != last_state:
                last_state = state
                status = {
                    "status": snapshot.status.value,
                    "progress": snapshot.progress,
                    "iteration": snapshot.last_iteration,
                    "n_iterations": snapshot.n_iterations,
                }
                chunk.append(format_event("status", status))
            if snapshot.status.is_terminal:
                chunk.append(format_event("end", snapshot.summary))
                yield "".join(chunk)
                return
        if not chunk and time.monotonic() - last_write >= KEEPALIVE_SECONDS:
            chunk.append(": keep-alive\n\n")
        if chunk:
            yield "".join(chunk)
            last_write = time.monotonic()
            chunk = []
        if not snapshot.more:
            await asyncio.sleep(poll_seconds)
        if await request.is_disconnected():
            return
        try:
            snapshot = await run_in_threadpool(read_snapshot, factory, tenant, job_id, since)
        except NotFound as exc:
            # The job vanished mid-stream; headers are sent, so say so in-band and stop.
            yield format_event("error", {"error": {"code": exc.code, "message": exc.message}})
            return


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    summary="Watch a job live: its history points, status changes, then an end event",
    description=EVENTS_DOC,
)
async def job_events(
    job_id: str,
    request: Request,
    tenant: TenantDep,
    settings: SettingsDep,
    factory: ReadSessionFactoryDep,
    last_event_id: Annotated[
        int | None,
        Header(ge=0, le=MAX_INDEX, description="resume after this iteration"),
        PLAIN_INT,
    ] = None,
    since: Annotated[
        int | None,
        Query(ge=0, le=MAX_INDEX, description="resume after this iteration (no snapshot)"),
        PLAIN_INT,
    ] = None,
) -> StreamingResponse:
    resume = last_event_id if last_event_id is not None else since
    start = resume if resume is not None else 0
    # Read once before streaming so an unknown job is a plain 404 with the error body.
    first = await run_in_threadpool(
        partial(read_snapshot, thinned=resume is None), factory, tenant, job_id, start
    )
    stream = job_event_stream(
        request, factory, tenant, job_id, first, start, settings.events_poll_seconds
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
