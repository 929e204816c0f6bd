"""Decoding photos without stalling anyone: threads of their own, a bounded wait, a time
limit, and a per-uploader share.

A 40-megapixel photo takes some 500 MB and a couple of seconds of a core while it is
decoded, turned and encoded again. If that ran in the threadpool every synchronous
endpoint shares, a rider sending many at once would fill it, and a clerk's queue would
wait behind the photos. So photos are decoded by a few threads of their own, at a lower
CPU priority than the threads answering requests; an upload waits for its turn without
holding any thread, and is answered 503 with ``Retry-After`` when the turn does not come
soon, or when its decoding takes too long (the decoding then finishes on its own, its
result unused). One uploader gets at most a few turns at once: more are 429 at once.
"""

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from app.config import Settings
from app.errors import PhotosBusy, UploadsLimited

logger = logging.getLogger("sentinel.media")
T = TypeVar("T")
# Uploads waiting for a turn, per decoding thread, before more are refused at once.
WAITING_PER_DECODER = 4
# How much lower than the request threads the decoding threads run (Linux's nice).
NICENESS = 10


Waiter = concurrent.futures.Future[None]


async def _until(waiter: Waiter, deadline: float) -> None:
    """Wait for ``waiter`` until ``deadline`` (monotonic), else 503 (try again)."""
    try:
        await asyncio.wait_for(
            asyncio.shield(asyncio.wrap_future(waiter)), max(0.0, deadline - time.monotonic())
        )
    except TimeoutError:
        raise PhotosBusy("the photo could not be processed now; try again", retry_after=2) from None


def _lower_priority() -> None:
    # On Linux a thread has a priority of its own, set through its thread id; elsewhere
    # the call would lower the whole process's, so it is made on Linux only.
    if sys.platform == "linux":
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        except OSError:  # pragma: no cover - a container that forbids it
            logger.warning("photo decoding runs at the same priority as requests")


class Decoder:
    """A few threads that decode photos, shared by every upload of the process."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="photo-decoder", initializer=_lower_priority
        )
        self._admitted = 0
        self._last: dict[Hashable, Waiter] = {}
        self._lock = threading.Lock()

    @contextmanager
    def _admission(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.threads * (1 + WAITING_PER_DECODER):
                raise PhotosBusy("too many photos are waiting to be processed; try again")
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    def _submit(
        self, work: Callable[[bytes], T], data: bytes
    ) -> tuple[Waiter, "concurrent.futures.Future[T]"]:
        began: Waiter = concurrent.futures.Future()

        def job() -> T:
            began.set_result(None)
            return work(data)

        return began, self._pool.submit(job)

    @contextmanager
    def _in_line(self, uploader: Hashable | None) -> Iterator["Waiter | None"]:
        """One photo of an uploader decoded at a time, so that one uploader never takes
        every thread: the previous photo of ``uploader`` still in progress, if any."""
        if uploader is None:
            yield None
            return
        mine: Waiter = concurrent.futures.Future()
        with self._lock:
            before = self._last.get(uploader)
            self._last[uploader] = mine
        try:
            yield before
        finally:
            mine.set_result(None)
            with self._lock:
                if self._last.get(uploader) is mine:
                    del self._last[uploader]

    async def run(
        self,
        work: Callable[[bytes], T],
        data: bytes,
        *,
        turn_wait_s: float,
        limit_s: float,
        uploader: Hashable | None = None,
    ) -> T:
        """``work(data)`` on a decoding thread, awaited without holding any other; an
        uploader's photos one after another."""
        deadline = time.monotonic() + turn_wait_s
        with self._admission(), self._in_line(uploader) as before:
            if before is not None:
                await _until(before, deadline)
            began, done = self._submit(work, data)
            try:
                await _until(began, deadline)
            except PhotosBusy:
                if done.cancel():
                    raise
            except asyncio.CancelledError:
                done.cancel()  # the client went away: its photo is not decoded for nobody
                raise
            try:
                return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(done)), limit_s)
            except TimeoutError:
                logger.warning("a photo took longer than %.0f s to decode", limit_s)
                raise PhotosBusy("the photo took too long to process", retry_after=10) from None

    def run_blocking(
        self, work: Callable[[bytes], T], data: bytes, *, turn_wait_s: float, limit_s: float
    ) -> T:
        """The same from a thread that may wait (a member of staff's upload)."""
        with self._admission():
            began, done = self._submit(work, data)
            try:
                began.result(timeout=turn_wait_s)
            except TimeoutError:
                if done.cancel():
                    raise PhotosBusy(
                        "the photo could not be processed now; try again", retry_after=2
                    ) from None
            try:
                return done.result(timeout=limit_s)
            except TimeoutError:
                logger.warning("a photo took longer than %.0f s to decode", limit_s)
                raise PhotosBusy("the photo took too long to process", retry_after=10) from None


@dataclass(frozen=True)
class Decoding:
    """How the process decodes photos (``SENTINEL_PHOTO_*``)."""

    threads: int = 2
    turn_wait_s: float = 5.0
    limit_s: float = 20.0

    @classmethod
    def of(cls, settings: Settings) -> "Decoding":
        return cls(
            settings.photo_decoders, settings.photo_turn_wait_s, settings.photo_decode_limit_s
        )


_decoding = Decoding()


def configure(settings: Settings) -> None:
    """Decode as ``settings`` say from now on (the app does this when it is made)."""
    global _decoding
    _decoding = Decoding.of(settings)


@cache
def _decoder(threads: int) -> Decoder:
    return Decoder(threads)


async def decode(work: Callable[[bytes], T], data: bytes, *, uploader: Hashable) -> T:
    """``work(data)`` on the process's decoding threads, awaited (a rider's upload; the
    uploader's photos one at a time)."""
    how = _decoding
    return await _decoder(how.threads).run(
        work, data, turn_wait_s=how.turn_wait_s, limit_s=how.limit_s, uploader=uploader
    )


def decode_blocking(work: Callable[[bytes], T], data: bytes) -> T:
    """The same from a thread that may wait (a member of staff's photo, the demo's)."""
    how = _decoding
    return _decoder(how.threads).run_blocking(
        work, data, turn_wait_s=how.turn_wait_s, limit_s=how.limit_s
    )


class Shares:
    """How many uploads each uploader has in progress in this process, each at most
    ``limit`` at once (a rider's app sends a report's photos one or two at a time)."""

    def __init__(self) -> None:
        self._held: Counter[Hashable] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, uploader: Hashable, *, limit: int) -> Iterator[None]:
        with self._lock:
            if self._held[uploader] >= limit:
                raise UploadsLimited(
                    f"at most {limit} photos may be uploaded at once; send the next when "
                    "one is done",
                    retry_after=2,
                )
            self._held[uploader] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[uploader] -= 1
                if not self._held[uploader]:
                    del self._held[uploader]


UPLOADS = Shares()
