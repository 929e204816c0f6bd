"""How photos are decoded (app/media/decoding.py): on threads of their own at a lower
priority, one photo of an uploader at a time, a bounded wait for a turn, a time limit,
and a bounded line; each refusal a 503 that says when to try again. Real threads, with
work that waits on events instead of decoding, so that each test decides who is busy."""

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from app.errors import PhotosBusy, UploadsLimited
from app.media.decoding import NICENESS, WAITING_PER_DECODER, Decoder, Shares


@pytest.fixture
def decoder() -> Iterator[Decoder]:
    one = Decoder(1)
    yield one
    one._pool.shutdown(wait=False, cancel_futures=True)


def held(release: threading.Event, ran: list[bytes]) -> Callable[[bytes], bytes]:
    def work(data: bytes) -> bytes:
        ran.append(data)
        release.wait(10)
        return data.upper()

    return work


def test_a_photo_that_gets_no_turn_in_time_is_a_503_and_is_never_decoded(
    decoder: Decoder,
) -> None:
    release, ran = threading.Event(), []
    work = held(release, ran)

    async def both() -> list[bytes | BaseException]:
        first = asyncio.create_task(decoder.run(work, b"a", turn_wait_s=5, limit_s=5))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(decoder.run(work, b"b", turn_wait_s=0.2, limit_s=5))
        await asyncio.sleep(0.4)
        release.set()
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(both())

    assert first == b"A"
    assert isinstance(second, PhotosBusy) and second.status == 503
    assert second.headers["Retry-After"] == "2"
    time.sleep(0.1)
    assert ran == [b"a"]


def test_a_photo_that_takes_too_long_is_a_503(decoder: Decoder) -> None:
    release = threading.Event()
    with pytest.raises(PhotosBusy) as refused:
        asyncio.run(decoder.run(held(release, []), b"a", turn_wait_s=1, limit_s=0.2))
    release.set()
    assert refused.value.headers["Retry-After"] == "10"


def test_the_line_is_bounded_and_refused_at_once_beyond(decoder: Decoder) -> None:
    release, ran = threading.Event(), []
    work = held(release, ran)
    room = decoder.threads * (1 + WAITING_PER_DECODER)

    async def crowd() -> tuple[list[bytes | BaseException], float]:
        admitted = [
            asyncio.create_task(decoder.run(work, b"x", turn_wait_s=5, limit_s=5))
            for _ in range(room)
        ]
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(PhotosBusy):
            await decoder.run(work, b"y", turn_wait_s=5, limit_s=5)
        refused_after = time.perf_counter() - started
        release.set()
        return await asyncio.gather(*admitted, return_exceptions=True), refused_after

    done, refused_after = asyncio.run(crowd())

    assert done == [b"X"] * room
    assert refused_after < 0.05


def test_one_uploader_never_takes_every_thread() -> None:
    two = Decoder(2)
    release, ran = threading.Event(), []
    work = held(release, ran)

    async def storm_and_bystander() -> list[bytes | BaseException]:
        storm = [
            asyncio.create_task(
                two.run(work, b"s%d" % n, turn_wait_s=5, limit_s=5, uploader="storm")
            )
            for n in range(2)
        ]
        await asyncio.sleep(0.05)
        # The storming uploader's second photo waits for its first: a thread is free.
        bystander = asyncio.create_task(
            two.run(lambda data: data.upper(), b"b", turn_wait_s=0.5, limit_s=5, uploader="b")
        )
        result = await asyncio.wait_for(bystander, 1)
        release.set()
        return [result, *await asyncio.gather(*storm)]

    assert asyncio.run(storm_and_bystander()) == [b"B", b"S0", b"S1"]
    assert ran == [b"s0", b"s1"]
    two._pool.shutdown(wait=False)


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own priority is Linux's")
def test_photos_are_decoded_at_a_lower_priority_than_requests(decoder: Decoder) -> None:
    seen = decoder.run_blocking(
        lambda _: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
        b"",
        turn_wait_s=1,
        limit_s=1,
    )
    assert seen == os.getpriority(os.PRIO_PROCESS, 0) + NICENESS


def test_a_waiting_thread_gets_the_same_answers(decoder: Decoder) -> None:
    release = threading.Event()
    first = threading.Thread(
        target=lambda: decoder.run_blocking(held(release, []), b"a", turn_wait_s=1, limit_s=5)
    )
    first.start()
    time.sleep(0.05)
    with pytest.raises(PhotosBusy):
        decoder.run_blocking(lambda d: d, b"b", turn_wait_s=0.1, limit_s=1)
    release.set()
    first.join()
    assert decoder.run_blocking(lambda d: d * 2, b"c", turn_wait_s=1, limit_s=1) == b"cc"


def test_an_uploader_has_a_few_uploads_at_once_and_no_more() -> None:
    shares = Shares()
    with shares.hold("r1", limit=2), shares.hold("r1", limit=2):
        with pytest.raises(UploadsLimited) as refused, shares.hold("r1", limit=2):
            pass
        with shares.hold("r2", limit=2):
            pass
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "2"
    with shares.hold("r1", limit=2), shares.hold("r1", limit=2):
        pass
