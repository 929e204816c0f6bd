"""Sign-in throttling: failures counted per account and address together, per address
and, far more slowly, per account from everywhere; a growing wait (429 with Retry-After)
after a few, a success that clears the account's count at its own address, password checks
bounded in number, and logs that never hold a password."""

import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.staff import sign_in
from tests.apps import another_client
from tests.conftest import Baseline, Clock
from tests.helpers import assert_problem

OFFICER = "officer_310105002"


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    c = Clock(datetime.now(UTC).replace(microsecond=0))
    app.state.clock = c
    return c


def attempt(client: TestClient, username: str, password: str) -> int:
    return client.post(
        "/v1/auth/token", data={"username": username, "password": password}
    ).status_code


def from_address(app: FastAPI, address: str) -> TestClient:
    """A client whose requests come from ``address``."""
    return another_client(app, client=(address, 50000))


def test_an_account_waits_longer_after_each_failure_and_a_success_clears_it(
    client: TestClient, baseline: Baseline, clock: Clock
) -> None:
    free = sign_in.FREE_FAILURES["pair"]
    assert [attempt(client, OFFICER, "wrong") for _ in range(free + 1)] == [401] * (free + 1)
    throttled = client.post("/v1/auth/token", data={"username": OFFICER, "password": "wrong"})
    assert_problem(throttled, 429, "sign_in_throttled")
    assert throttled.headers["Retry-After"] == "1"
    # The right password waits too: a guesser cannot tell a hit during the wait.
    assert attempt(client, OFFICER, baseline.password(OFFICER)) == 429
    clock.advance(seconds=1)
    assert attempt(client, OFFICER, "wrong") == 401  # the 7th failure: 2 s now
    second = client.post("/v1/auth/token", data={"username": OFFICER, "password": "wrong"})
    assert second.status_code == 429 and second.headers["Retry-After"] == "2"
    clock.advance(seconds=2)
    assert attempt(client, OFFICER, baseline.password(OFFICER)) == 200
    # Counted from zero again.
    assert [attempt(client, OFFICER, "wrong") for _ in range(free)] == [401] * free
    # Another account is not held up by this one.
    assert attempt(client, "changning", baseline.password("changning")) == 200


def test_the_waits_grow_to_a_quarter_of_an_hour_and_are_forgotten_after_one() -> None:
    waits = [sign_in.wait_after("pair", n).total_seconds() for n in range(1, 20)]
    assert waits[:5] == [0] * 5 and waits[5:9] == [1, 2, 4, 8]
    assert max(waits) == 900
    assert sign_in.wait_after("ip", 30) == timedelta(0)
    assert sign_in.wait_after("ip", 31) == timedelta(seconds=1)
    # An account from everywhere: far more failures before the first wait, and a wait
    # that slows guessing without keeping the clerk out for long.
    assert sign_in.wait_after("user", 100) == timedelta(0)
    assert sign_in.wait_after("user", 101) == timedelta(seconds=1)
    assert sign_in.wait_after("user", 1000) == timedelta(minutes=1)


def test_the_addresses_of_one_ipv6_network_count_as_one(
    app: FastAPI, baseline: Baseline, clock: Clock
) -> None:
    free = sign_in.FREE_FAILURES["pair"]
    hosts = (from_address(app, f"2001:db8:5:7::{n:x}") for n in range(1, 100))
    assert [attempt(next(hosts), OFFICER, "wrong") for _ in range(free + 1)] == [401] * (free + 1)
    assert attempt(next(hosts), OFFICER, "wrong") == 429
    # Another network, and IPv4 written as IPv6, are addresses of their own.
    assert attempt(from_address(app, "2001:db8:5:8::1"), OFFICER, "wrong") == 401
    assert sign_in.keys_of("x", "::ffff:198.51.100.9")[-1] == "ip:198.51.100.9"


def test_failures_from_one_address_never_lock_the_account_out_from_another(
    app: FastAPI, baseline: Baseline, clock: Clock
) -> None:
    guesser, clerk = from_address(app, "203.0.113.7"), from_address(app, "198.51.100.20")
    free = sign_in.FREE_FAILURES["pair"]
    assert [attempt(guesser, OFFICER, "wrong") for _ in range(free + 1)] == [401] * (free + 1)
    assert attempt(guesser, OFFICER, "wrong") == 429
    assert attempt(guesser, OFFICER, baseline.password(OFFICER)) == 429
    # The clerk at the office signs in all the same.
    assert attempt(clerk, OFFICER, baseline.password(OFFICER)) == 200
    # The address is not refused for another account.
    assert attempt(guesser, "changning", baseline.password("changning")) == 200
    # The clerk's sign-in ends no count of the guesser's: still waiting, growing.
    clock.advance(seconds=1)
    assert attempt(guesser, OFFICER, "wrong") == 401
    assert attempt(guesser, OFFICER, "wrong") == 429


def test_many_addresses_failing_one_account_slow_it_down_everywhere_and_say_so(
    app: FastAPI, baseline: Baseline, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "correct-horse-battery-9"
    per_address = sign_in.FREE_FAILURES["pair"]  # never enough to wait at one address
    total = sign_in.FREE_FAILURES["user"]
    addresses = (f"203.0.113.{n}" for n in range(1, 255))
    answers: list[int] = []
    with caplog.at_level(logging.INFO, logger="sentinel"):
        while len(answers) < total:
            guesser = from_address(app, next(addresses))
            answers += [attempt(guesser, OFFICER, secret) for _ in range(per_address)]
        assert answers == [401] * total
        assert "sign-in: account under attack" not in [r.getMessage() for r in caplog.records]
        # One more, from anywhere: the account waits now, wherever it is tried from.
        assert attempt(from_address(app, next(addresses)), OFFICER, secret) == 401
    alarms = [r for r in caplog.records if r.getMessage() == "sign-in: account under attack"]
    assert len(alarms) == 1 and alarms[0].levelno == logging.WARNING
    fields = getattr(alarms[0], "fields", {})
    assert fields["account"] == OFFICER and fields["failures"] == total + 1
    assert fields["retry_after"] == 1
    assert secret not in str(fields)
    clerk = from_address(app, "198.51.100.20")
    refused = clerk.post(
        "/v1/auth/token", data={"username": OFFICER, "password": baseline.password(OFFICER)}
    )
    assert_problem(refused, 429, "sign_in_throttled")
    assert refused.headers["Retry-After"] == "1"
    assert attempt(clerk, "changning", baseline.password("changning")) == 200
    clock.advance(seconds=1)
    assert attempt(clerk, OFFICER, baseline.password(OFFICER)) == 200


def test_one_address_trying_many_accounts_is_throttled(client: TestClient, clock: Clock) -> None:
    free = sign_in.FREE_FAILURES["ip"]
    answers = [attempt(client, f"nobody-{n}", "guess") for n in range(free + 2)]
    assert answers[: free + 1] == [401] * (free + 1) and answers[-1] == 429
    clock.advance(hours=2)  # forgotten
    assert attempt(client, "nobody-new", "guess") == 401


def test_failed_and_throttled_sign_ins_are_logged_without_the_password(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "correct-horse-battery-9"
    with caplog.at_level(logging.INFO, logger="sentinel"):
        for _ in range(sign_in.FREE_FAILURES["pair"] + 2):
            attempt(client, OFFICER, secret)
    messages = [r.getMessage() for r in caplog.records]
    assert "sign-in failed" in messages and "sign-in throttled" in messages
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert OFFICER in logged and secret not in logged


def test_password_checks_are_bounded_in_number(
    client: TestClient, baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sign_in, "TURN_WAIT_S", 0.2)
    held = [sign_in._checks.acquire(timeout=1) for _ in range(sign_in.CHECKS_AT_ONCE)]
    try:
        assert all(held)
        busy = client.post(
            "/v1/auth/token", data={"username": OFFICER, "password": baseline.password(OFFICER)}
        )
        assert_problem(busy, 503, "sign_in_busy")
        assert busy.headers["Retry-After"] == "2"
    finally:
        for _ in held:
            sign_in._checks.release()
    assert attempt(client, OFFICER, baseline.password(OFFICER)) == 200


def test_concurrent_sign_ins_never_check_more_passwords_at_once_than_allowed(
    client: TestClient, baseline: Baseline, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_once = 0
    most = 0
    lock = threading.Lock()
    real = sign_in.password_check

    def counting() -> Iterator[None]:
        nonlocal at_once, most
        with real():
            with lock:
                at_once += 1
                most = max(most, at_once)
            try:
                yield
            finally:
                with lock:
                    at_once -= 1

    from contextlib import contextmanager

    monkeypatch.setattr(sign_in, "password_check", contextmanager(counting))
    threads = [
        threading.Thread(target=attempt, args=(client, "changning", baseline.password("changning")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= most <= sign_in.CHECKS_AT_ONCE


def test_the_console_sign_in_is_throttled_too(app: FastAPI, clock: Clock) -> None:
    http = another_client(app, follow_redirects=False)
    page = http.get("/console/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {"username": OFFICER, "password": "wrong", "csrf_token": csrf[1]}
    answers = [
        http.post("/console/login", data=form).status_code
        for _ in range(sign_in.FREE_FAILURES["pair"] + 2)
    ]
    assert answers[-1] == 429 and set(answers[:-1]) == {401}
    assert "尝试次数过多" in http.post("/console/login", data=form).text
