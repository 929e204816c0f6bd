"""The channels' fixtures: receivers on 127.0.0.1 for WeCom, DingTalk, Feishu and
webhooks (``tests.notify.receivers``), a real SMTP server (aiosmtpd), and the app's
settings pointing at them."""

import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from app.config import Settings
from app.db import Database
from app.ops.worker import JOBS
from tests.notify.receivers import Receivers, start

TZ = ZoneInfo("Asia/Shanghai")
STREET = "310105002"  # 江苏路街道
DISTRICT = "changning"
DISTRICT_CODE = "310105"  # 长宁区
OFFICER = "officer_310105002"
# A Wednesday, with working days around it.
MORNING = datetime(2026, 12, 9, 10, 0, tzinfo=TZ)
PUBLIC_URL = "https://sentinel.changning.example"
OPS_TOKEN = "ops-token-of-the-notify-tests"


class Mailbox:
    """What the SMTP server was given: each message, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with socket.socket() as probe:  # a free port (the controller checks the one it is given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    running = start(
        Receivers(
            secrets={
                "dingtalk": "SECding-secret",
                "feishu": "feishu-secret",
                "webhook": "hook-secret",
            }
        )
    )
    try:
        yield running
    finally:
        assert running.server is not None
        running.server.shutdown()
        running.server.server_close()


@pytest.fixture
def settings(settings: Settings, mailbox: tuple[Mailbox, int]) -> Settings:
    """The app's settings: channels may reach 127.0.0.1, e-mail goes to the test's
    SMTP server, links start with a public URL."""
    return settings.model_copy(
        update={
            "allow_private_webhooks": True,
            "smtp_url": f"smtp://127.0.0.1:{mailbox[1]}?from=sentinel@changning.example",
            "public_url": PUBLIC_URL,
            "channel_min_interval_s": 3.0,
            "ops_token": OPS_TOKEN,
        }
    )


class Day:
    """The test's clock, the app's too, and the worker's jobs run at it."""

    def __init__(self, app: FastAPI, database: Database, settings: Settings, start: datetime):
        self.now = start
        self.app, self.database, self.settings = app, database, settings
        app.state.clock = lambda: self.now

    def at(self, moment: datetime) -> "Day":
        self.now = moment
        return self

    def later(self, **delta: float) -> "Day":
        self.now += timedelta(**delta)
        return self

    def run(self, *names: str) -> dict[str, int]:
        done = {}
        for name in names:
            job = next(j for j in JOBS if j.name == name)
            done[name] = job.run(self.database, self.settings, now=self.now)
        return done

    def tell(self) -> int:
        """Notifications written from what has settled, and sent: messages sent."""
        self.later(seconds=61)
        self.run("notify_events")
        return self.run("deliver_notifications")["deliver_notifications"]


@pytest.fixture
def day(app: FastAPI, database: Database, settings: Settings) -> Iterator[Day]:
    original = app.state.clock
    yield Day(app, database, settings, MORNING)
    app.state.clock = original
