"""Fixtures of the rider's front door: a clock the test moves by hand, two riders."""

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI

from tests.api.reporting import Clock, Headers
from tests.conftest import Auth


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    c = Clock(datetime.now(UTC).replace(microsecond=0))
    app.state.clock = c
    return c


@pytest.fixture
def r1(auth: Auth) -> Headers:
    return auth.rider("meituan", "r1")


@pytest.fixture
def r2(auth: Auth) -> Headers:
    return auth.rider("eleme", "r2")
