"""How photos are decoded (app/media/decoding.py): on threads of their own at a lower
priority, a few photos of an uploader in progress at once and one after another, a
bounded wait for a turn, a time limit, and a bounded line; each refusal says when to try
again, and a decoding given up on keeps its place until its thread is done with it. Real
threads, with work that waits on events instead of decoding, so that each test decides
who is busy and when."""

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.errors import PhotosBusy, UploadsLimited
from app.media.decoding import NICENESS, WAITING_PER_DECODER, Decoder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def decoder() -> Iterator[Decoder]:
    one = Decoder(1)
    yield one
    one._pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def two() -> Iterator[Decoder]:
    both = Decoder(2)
    yield both
    both._pool.shutdown(wait=False, cancel_futures=True)


class Held:
    """Work that says when it starts and waits to be let go."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.ran: list[bytes] = []

    def __call__(self, data: bytes) -> bytes:
        self.ran.append(data)
        self.started.set()
        assert self.release.wait(10)
        return data.upper()

    async def running(self) -> None:
        assert await asyncio.to_thread(self.started.wait, 5)


def quick(data: bytes) -> bytes:
    return data.upper()


def test_a_photo_that_gets_no_turn_in_time_is_a_503_and_is_never_decoded(
    decoder: Decoder,
) -> None:
    work = Held()

    async def both() -> list[bytes | BaseException]:
        first = asyncio.create_task(decoder.run(work, b"a", turn_wait_s=5, limit_s=5))
        await work.running()
        second = await asyncio.gather(
            decoder.run(work, b"b", turn_wait_s=0.2, limit_s=5), return_exceptions=True
        )
        work.release.set()
        return [await first, *second]

    first, second = asyncio.run(both())

    assert first == b"A"
    assert isinstance(second, PhotosBusy) and second.status == 503
    assert second.headers["Retry-After"] == "2"
    assert work.ran == [b"a"]


def test_a_photo_that_takes_too_long_is_a_503_and_keeps_its_place_until_done(
    decoder: Decoder,
) -> None:
    work = Held()

    async def slow_then_next() -> tuple[BaseException, BaseException, bytes]:
        with pytest.raises(PhotosBusy) as slow:
            await decoder.run(work, b"a", turn_wait_s=1, limit_s=0.2, uploader="r", at_once=1)
        # Given up on, the decoding still runs: it is still the uploader's one at once.
        with pytest.raises(UploadsLimited) as again:
            await decoder.run(quick, b"b", turn_wait_s=1, limit_s=1, uploader="r", at_once=1)
        work.release.set()
        await asyncio.sleep(0)
        for _ in range(100):  # its thread lets go of it as soon as it is done
            try:
                return (
                    slow.value,
                    again.value,
                    await decoder.run(
                        quick, b"c", turn_wait_s=1, limit_s=1, uploader="r", at_once=1
                    ),
                )
            except UploadsLimited:
                await asyncio.sleep(0.01)
        raise AssertionError("the place was never given back")

    slow, again, after = asyncio.run(slow_then_next())

    assert slow.headers["Retry-After"] == "10"
    assert again.status == 429 and again.headers["Retry-After"] == "2"
    assert after == b"C"


def test_the_line_is_bounded_and_refused_at_once_beyond(decoder: Decoder) -> None:
    work = Held()
    room = decoder.threads * (1 + WAITING_PER_DECODER)

    async def crowd() -> list[bytes | BaseException]:
        admitted = [
            asyncio.create_task(decoder.run(work, b"x", turn_wait_s=5, limit_s=5))
            for _ in range(room)
        ]
        await work.running()
        await asyncio.sleep(0)  # every task has taken its place
        with pytest.raises(PhotosBusy):
            await asyncio.wait_for(decoder.run(quick, b"y", turn_wait_s=5, limit_s=5), 1)
        work.release.set()
        return await asyncio.gather(*admitted, return_exceptions=True)

    assert asyncio.run(crowd()) == [b"X"] * room


def test_one_uploader_never_takes_every_thread(two: Decoder) -> None:
    work = Held()

    async def storm_and_bystander() -> list[bytes | BaseException]:
        storm = [
            asyncio.create_task(
                two.run(work, b"s%d" % n, turn_wait_s=5, limit_s=5, uploader="storm", at_once=2)
            )
            for n in range(2)
        ]
        await work.running()
        # The storm's second photo waits for its first: the other thread is free.
        bystander = await asyncio.wait_for(
            two.run(quick, b"b", turn_wait_s=0.5, limit_s=5, uploader="b", at_once=2), 1
        )
        assert work.ran == [b"s0"]
        work.release.set()
        return [bystander, *await asyncio.gather(*storm)]

    assert asyncio.run(storm_and_bystander()) == [b"B", b"S0", b"S1"]
    assert work.ran == [b"s0", b"s1"]


def test_an_uploader_has_a_few_photos_in_progress_at_once_and_no_more(two: Decoder) -> None:
    work = Held()

    async def three() -> BaseException:
        held = [
            asyncio.create_task(
                two.run(work, b"a", turn_wait_s=5, limit_s=5, uploader="r", at_once=2)
            )
            for _ in range(2)
        ]
        await work.running()
        with pytest.raises(UploadsLimited) as third:
            await two.run(quick, b"c", turn_wait_s=5, limit_s=5, uploader="r", at_once=2)
        other = await two.run(quick, b"d", turn_wait_s=5, limit_s=5, uploader="o", at_once=2)
        assert other == b"D"
        work.release.set()
        await asyncio.gather(*held)
        return third.value

    refused = asyncio.run(three())
    assert refused.status == 429 and refused.headers["Retry-After"] == "2"


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own priority is Linux's")
def test_photos_are_decoded_at_a_lower_priority_than_requests(decoder: Decoder) -> None:
    seen = decoder.run_blocking(
        lambda _: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
        b"",
        turn_wait_s=1,
        limit_s=1,
    )
    assert seen == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)


def test_a_waiting_thread_gets_the_same_answers(decoder: Decoder) -> None:
    work = Held()
    answers: list[bytes] = []
    first = threading.Thread(
        target=lambda: answers.append(decoder.run_blocking(work, b"a", turn_wait_s=1, limit_s=5))
    )
    first.start()
    assert work.started.wait(5)
    with pytest.raises(PhotosBusy):
        decoder.run_blocking(quick, b"b", turn_wait_s=0.1, limit_s=1)
    work.release.set()
    first.join()
    assert answers == [b"A"]
    double: Callable[[bytes], bytes] = lambda d: d * 2  # noqa: E731
    assert decoder.run_blocking(double, b"c", turn_wait_s=1, limit_s=1) == b"cc"


def where_and_how_nice(data: bytes) -> tuple[int, int, bytes]:
    """(its process, that process's priority, the work's answer), in a decoding process."""
    return os.getpid(), os.getpriority(os.PRIO_PROCESS, 0), data.upper()


def dies(data: bytes) -> bytes:
    os._exit(3)  # a decoding process killed mid-photo (say, for its memory)


@pytest.fixture
def in_processes() -> Iterator[Decoder]:
    one = Decoder(1, processes=True)
    yield one
    one._pool.shutdown(wait=False, cancel_futures=True)
    if one._processes is not None:
        one._processes.shutdown(wait=True, cancel_futures=True)


def test_photos_can_be_decoded_in_a_process_of_their_own_at_a_lower_priority(
    in_processes: Decoder,
) -> None:
    """The API's process keeps its interpreter for requests while a photo is decoded."""
    pid, priority, answer = in_processes.run_blocking(
        where_and_how_nice, b"photo", turn_wait_s=30, limit_s=30
    )
    assert answer == b"PHOTO" and pid != os.getpid()
    assert priority == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    again, _, _ = asyncio.run(
        in_processes.run(where_and_how_nice, b"x", turn_wait_s=30, limit_s=30, uploader="r")
    )
    assert again == pid  # the same process, not one per photo


def test_a_decoding_process_that_dies_costs_that_photo_a_503_and_no_more(
    in_processes: Decoder,
) -> None:
    with pytest.raises(PhotosBusy):
        in_processes.run_blocking(dies, b"bomb", turn_wait_s=30, limit_s=30)
    pid, _, answer = in_processes.run_blocking(
        where_and_how_nice, b"next", turn_wait_s=30, limit_s=30
    )
    assert answer == b"NEXT" and pid != os.getpid()
    assert in_processes._admitted == 0  # every place given back


PARENT = """
import sys, time
from app.media.decoding import Decoder
from tests.media.test_decoding import where_and_how_nice
decoder = Decoder(1, processes=True)
pid, _, _ = decoder.run_blocking(where_and_how_nice, b"x", turn_wait_s=30, limit_s=30)
print(pid, flush=True)
time.sleep(60)
"""


def test_decoding_processes_end_with_a_parent_that_was_killed() -> None:
    """A parent killed outright cannot stop its decoding processes: they see it gone and
    end, rather than wait for photos forever holding memory and the parent's output."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert child != parent.pid and _alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A process that has ended but is not yet reaped by init is a zombie: gone too.
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return False
