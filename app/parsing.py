"""Large request bodies parsed in a separate process, off the event loop and off its GIL.

json, orjson and pydantic-core hold the GIL while they parse, so a 48 MB JSON upload parsed on
a thread still stops the event loop (and /healthz) for the whole parse. Above a size threshold
the body goes to a small pool of spawned processes instead; what comes back is NumPy arrays,
which unpickle with one copy. Below it, the hop would cost more than the parse.

The functions sent to the pool are module-level and take and return picklable values; a
domain error raised there (InvalidInput, ...) pickles with its message and details and is
raised again here unchanged. A body of tens of megabytes is not one of those values: pickling
it, and unpickling what comes back, are single copies made holding the GIL (a 48 MB upload
stopped /healthz for 50-100 ms at each end), so it travels through a file (see `spooled`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from anyio import to_thread
from prometheus_client import Counter

from app.errors import ServiceUnavailable
from app.jobs.local import die_with_parent
from app.metrics import PROCESS_REGISTRY

log = logging.getLogger(__name__)
T = TypeVar("T")

OFFLOADED_PARSES = Counter(
    "dnn_offloaded_parses",
    "Request bodies parsed in the parsing process pool (above DNN_PARSE_OFFLOAD_BYTES), by kind.",
    ["kind"],
    registry=PROCESS_REGISTRY,
)


def _write_all(fd: int, chunks: Sequence[bytes]) -> None:
    with open(fd, "wb", buffering=0) as file:
        for chunk in chunks:
            file.write(chunk)  # a system call, made without the GIL


@asynccontextmanager
async def spooled(chunks: Sequence[bytes]) -> AsyncIterator[Path]:
    """A temporary file holding the chunks (written from a thread), removed on exit.

    A pool process reads the body from it and may write its result back into it, so that
    neither crosses the pool's pipe as a pickle.
    """
    try:
        fd, name = tempfile.mkstemp(prefix="dnn-body-")
    except OSError as exc:
        raise no_room_for_body(exc) from None
    path = Path(name)
    try:
        try:
            await to_thread.run_sync(_write_all, fd, chunks)
        except OSError as exc:
            raise no_room_for_body(exc) from None
        yield path
    finally:
        path.unlink(missing_ok=True)


def no_room_for_body(exc: OSError) -> ServiceUnavailable:
    """A body that could not be written to the temporary folder (full, or gone): the server's
    own condition, not the client's, so 503."""
    log.error("could not buffer a request body in %s: %s", tempfile.gettempdir(), exc)
    return ServiceUnavailable(
        f"the server could not buffer this body on disk ({exc.strerror or exc}); try again later",
        retry_after=30,
    )


def _warm_up() -> None:
    """Import what the parsers need, so the first large body does not pay for it."""
    import app.api.predict
    import app.ingest  # noqa: F401


class ParsePool:
    """A process pool for large bodies; `threshold` bytes and up go there, the rest to a thread."""

    def __init__(self, workers: int, threshold: int) -> None:
        self.threshold = threshold
        self.workers = workers
        self._pool = self._start() if workers > 0 else None

    def _start(self) -> ProcessPoolExecutor:
        # Spawned, never forked: a fork of the server would copy its threads' locks.
        pool = ProcessPoolExecutor(
            self.workers, mp_context=mp.get_context("spawn"), initializer=die_with_parent
        )
        for _ in range(self.workers):
            pool.submit(_warm_up)
        return pool

    def offloads(self, size: int) -> bool:
        return self._pool is not None and size >= self.threshold

    async def run(self, kind: str, size: int, fn: Callable[..., T], *args: object) -> T:
        """fn(*args) in the pool when the body is `size` bytes >= threshold, else on a thread.

        Raises ServiceUnavailable when a pool process dies (killed, or out of memory on a huge
        body) with this body in or waiting for it; the pool is then started afresh, so that
        later bodies do not all fail on the broken one.
        """
        pool = self._pool
        if pool is None or not self.offloads(size):
            return await to_thread.run_sync(fn, *args)
        OFFLOADED_PARSES.labels(kind).inc()
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except BrokenProcessPool:
            self._replace(pool)
            raise ServiceUnavailable(
                "the parsing process stopped (killed, or out of memory) while it held this "
                "body; try again"
            ) from None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is broken:  # the first request to see it broken replaces it
            log.error("a parsing process died; starting the parsing pool afresh")
            broken.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
