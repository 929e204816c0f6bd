"""Decoding photos without stalling anyone: threads of their own, a bounded wait, a time
limit, and a per-uploader share.

A 40-megapixel photo takes some 500 MB and a couple of seconds of a core while it is
decoded, turned and encoded again. If that ran in the threadpool every synchronous
endpoint shares, a rider sending many at once would fill it, and a clerk's queue would
wait behind the photos. So photos are decoded by a few threads of their own, at a lower
CPU priority than the threads answering requests; an upload waits for its turn without
holding any thread, and is answered 503 with ``Retry-After`` when the turn does not come
soon, or when its decoding takes too long. An uploader has at most a few photos in
progress at once (more are 429 at once) and they are decoded one after another, so one
uploader never takes every thread. A photo whose answer was given up on (too slow, or
its client gone) still counts against its uploader and its place until its thread is
done with it: giving up on a decoding frees nothing while it runs.

By default each decoding thread hands its photo to a process of its own and waits for it
without holding the interpreter's lock: the API's process keeps its core for requests
(intake's writer, the pages) while photos are decoded on another. With
``SENTINEL_PHOTO_DECODING_PROCESSES=false`` the threads decode themselves.
"""

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from app.config import Settings
from app.errors import PhotosBusy, UploadsLimited

logger = logging.getLogger("sentinel.media")
T = TypeVar("T")
# Photos waiting for a turn, per decoding thread, before more are refused at once.
WAITING_PER_DECODER = 4
# How much lower than the request threads the decoding threads run (Linux's nice).
NICENESS = 10
# How often a decoding process looks whether the process it decodes for still runs.
PARENT_CHECK_S = 0.5
Waiter = concurrent.futures.Future[None]


def _busy() -> PhotosBusy:
    return PhotosBusy("the photo could not be processed now; try again", retry_after=2)


async def _until(waiter: Waiter, deadline: float) -> None:
    """Wait for ``waiter`` until ``deadline`` (monotonic), else 503 (try again)."""
    try:
        await asyncio.wait_for(
            asyncio.shield(asyncio.wrap_future(waiter)), max(0.0, deadline - time.monotonic())
        )
    except TimeoutError:
        raise _busy() from None


def _lower_priority() -> None:
    # On Linux a thread has a priority of its own, set through its thread id; elsewhere
    # the call would lower the whole process's, so it is made on Linux only.
    if sys.platform == "linux":
        try:
            niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:  # pragma: no cover - a container that forbids it
            logger.warning("photo decoding runs at the same priority as requests")


def _ready() -> None:
    """Nothing: a decoding process is ready once it has imported this module (and with
    it the app's photo code)."""


def _prepare(niceness: int | None, parent: int) -> None:
    """A decoding process: at the threads' lower priority, and gone with its parent."""
    if niceness is not None:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """Ends this process once ``parent`` has ended. A parent that ends cleanly stops its
    decoding processes itself; one killed (SIGKILL, a crash) cannot, and they would wait
    for photos forever, each holding its memory and the parent's output."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


@dataclass
class _Place:
    """A photo's place: in the line of the process, in its uploader's share, and after
    the uploader's previous photo (``before``); given back once (``freed``)."""

    uploader: Hashable | None
    before: Waiter | None
    mine: Waiter
    freed: bool = False


class Decoder:
    """A few threads that decode photos, shared by every upload of the process; each in
    a process of its own if ``processes``."""

    def __init__(self, threads: int, *, processes: bool = False) -> None:
        self.threads = threads
        self._pool = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="photo-decoder", initializer=_lower_priority
        )
        self._processes: concurrent.futures.ProcessPoolExecutor | None = None
        self._in_processes = processes
        # The processes' priority, as the threads' (a process started from a decoding
        # thread would inherit that thread's, lowered already).
        self._niceness = (
            min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
            if hasattr(os, "getpriority")
            else None
        )
        self._admitted = 0
        self._shares: Counter[Hashable] = Counter()
        self._last: dict[Hashable, Waiter] = {}
        self._lock = threading.Lock()

    def _take(self, uploader: Hashable | None, at_once: int | None) -> _Place:
        with self._lock:
            if uploader is not None and at_once is not None and self._shares[uploader] >= at_once:
                raise UploadsLimited(
                    f"at most {at_once} photos may be in progress at once; send the next "
                    "when one is done",
                    retry_after=2,
                )
            if self._admitted >= self.threads * (1 + WAITING_PER_DECODER):
                raise _busy()
            self._admitted += 1
            mine: Waiter = concurrent.futures.Future()
            before = None
            if uploader is not None:
                self._shares[uploader] += 1
                before = self._last.get(uploader)
                self._last[uploader] = mine
            return _Place(uploader, before, mine)

    def _give_back(self, place: _Place) -> None:
        with self._lock:
            if place.freed:
                return
            place.freed = True
            self._admitted -= 1
            if place.uploader is not None:
                self._shares[place.uploader] -= 1
                if not self._shares[place.uploader]:
                    del self._shares[place.uploader]
                if self._last.get(place.uploader) is place.mine:
                    del self._last[place.uploader]
        place.mine.set_result(None)

    def _submit(
        self, work: Callable[[bytes], T], data: bytes, place: _Place
    ) -> tuple[Waiter, "concurrent.futures.Future[T]"]:
        began: Waiter = concurrent.futures.Future()

        def job() -> T:
            began.set_result(None)
            if not self._in_processes:
                return work(data)
            return self._elsewhere(work, data)

        done = self._pool.submit(job)
        # The place is given back when the thread is done with the photo (or the photo
        # never got one), whether or not anyone still waits for the answer.
        done.add_done_callback(lambda _: self._give_back(place))
        return began, done

    def _started(self) -> concurrent.futures.ProcessPoolExecutor:
        """The decoding processes: started (each importing the app's photo code, about a
        second) when first asked for, and again after one of them died."""
        with self._lock:
            if self._processes is None:
                self._processes = concurrent.futures.ProcessPoolExecutor(
                    self.threads,
                    # spawn: a fork would copy this process's threads' locks mid-use.
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_prepare,
                    initargs=(self._niceness, os.getpid()),
                )
                # One at a time would start each when a photo first needs it, and that
                # photo would wait for the import; every one is started now instead.
                for _ in range(self.threads):
                    self._processes.submit(_ready)
            return self._processes

    def warm(self) -> None:
        """Start the decoding processes now, if photos are decoded in processes."""
        if self._in_processes:
            self._started()

    def _elsewhere(self, work: Callable[[bytes], T], data: bytes) -> T:
        """``work(data)`` in one of the decoding processes (a new set if one of them
        died, say killed for its memory: that photo is a 503)."""
        processes = self._started()
        try:
            return processes.submit(work, data).result()
        except concurrent.futures.process.BrokenProcessPool:
            logger.error("a photo decoding process died; starting new ones")
            with self._lock:
                if self._processes is processes:
                    self._processes = None
            processes.shutdown(wait=False, cancel_futures=True)
            raise _busy() from None

    async def run(
        self,
        work: Callable[[bytes], T],
        data: bytes,
        *,
        turn_wait_s: float,
        limit_s: float,
        uploader: Hashable | None = None,
        at_once: int | None = None,
    ) -> T:
        """``work(data)`` on a decoding thread, awaited without holding any other: 429
        beyond the uploader's ``at_once``, 503 when the line is full, when no turn comes
        within ``turn_wait_s`` or the work takes over ``limit_s``."""
        deadline = time.monotonic() + turn_wait_s
        place = self._take(uploader, at_once)
        submitted = False
        try:
            if place.before is not None:
                await _until(place.before, deadline)
            began, done = self._submit(work, data, place)
            submitted = True
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
                logger.warning("a photo took longer than %s s to decode", limit_s)
                raise PhotosBusy("the photo took too long to process", retry_after=10) from None
        finally:
            if not submitted:
                self._give_back(place)

    def run_blocking(
        self, work: Callable[[bytes], T], data: bytes, *, turn_wait_s: float, limit_s: float
    ) -> T:
        """The same from a thread that may wait (a member of staff's photo)."""
        place = self._take(None, None)
        began, done = self._submit(work, data, place)
        try:
            began.result(timeout=turn_wait_s)
        except TimeoutError:
            if done.cancel():
                raise _busy() from None
        try:
            return done.result(timeout=limit_s)
        except TimeoutError:
            logger.warning("a photo took longer than %s s to decode", limit_s)
            raise PhotosBusy("the photo took too long to process", retry_after=10) from None


@dataclass(frozen=True)
class Decoding:
    """How the process decodes photos (``SENTINEL_PHOTO_*``, ``SENTINEL_RIDER_PHOTOS_AT_ONCE``)."""

    threads: int
    turn_wait_s: float
    limit_s: float
    at_once: int
    processes: bool

    @classmethod
    def of(cls, settings: Settings) -> "Decoding":
        return cls(
            settings.photo_decoders,
            settings.photo_turn_wait_s,
            settings.photo_decode_limit_s,
            settings.rider_photos_at_once,
            settings.photo_decoding_processes,
        )

    @classmethod
    def by_default(cls) -> "Decoding":
        fields = Settings.model_fields
        return cls(
            fields["photo_decoders"].default,
            fields["photo_turn_wait_s"].default,
            fields["photo_decode_limit_s"].default,
            fields["rider_photos_at_once"].default,
            fields["photo_decoding_processes"].default,
        )


_decoding = Decoding.by_default()


def configure(settings: Settings) -> None:
    """Decode as ``settings`` say from now on (the app does this when it is made)."""
    global _decoding
    _decoding = Decoding.of(settings)
    _decoder(_decoding.threads, _decoding.processes).warm()


@cache
def _decoder(threads: int, processes: bool) -> Decoder:
    return Decoder(threads, processes=processes)


async def decode(work: Callable[[bytes], T], data: bytes, *, uploader: Hashable) -> T:
    """``work(data)`` on the process's decoding threads, awaited (a rider's upload: a few
    of the uploader's at once, one after another)."""
    how = _decoding
    return await _decoder(how.threads, how.processes).run(
        work,
        data,
        turn_wait_s=how.turn_wait_s,
        limit_s=how.limit_s,
        uploader=uploader,
        at_once=how.at_once,
    )


def decode_blocking(work: Callable[[bytes], T], data: bytes) -> T:
    """The same from a thread that may wait (a member of staff's photo, the demo's)."""
    how = _decoding
    return _decoder(how.threads, how.processes).run_blocking(
        work, data, turn_wait_s=how.turn_wait_s, limit_s=how.limit_s
    )
