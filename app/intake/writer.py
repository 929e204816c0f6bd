"""The writer: one task per process that stores the reports queued while it was busy,
together, with one commit (group commit)."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app import tickets
from app.config import Settings
from app.db import (
    BatchConnection,
    Database,
    connect_batches,
)
from app.errors import (
    DatabaseBusy,
    IdempotencyKeyInFlight,
)
from app.intake.batch import Batch, BeginAgain, RenderReceipt, Submission, check
from app.intake.rules import Received, ReportInput
from app.intake.statements import IntakeStatements
from app.tickets import Reference

logger = logging.getLogger("sentinel.intake")

# The most reports one transaction stores; more wait for the next.
MAX_BATCH = 64
# How often a batch is begun again when the world moved under it (a ticket it joins
# was closed meanwhile, a deadlock with a merge, the reference data replaced).
MAX_ATTEMPTS = 5


class IntakeWriter:
    """Stores the reports of this process, in batches, from a task on its event loop."""

    def __init__(
        self, database: Database, settings: Settings, *, render_receipt: RenderReceipt
    ) -> None:
        self.database = database
        self.settings = settings
        self.render_receipt = render_receipt
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._in_flight: set[tuple[uuid.UUID, str]] = set()
        self._connection: BatchConnection | None = None
        self._statements: IntakeStatements | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the requests' side

    def submit(
        self,
        *,
        rider_id: uuid.UUID,
        data: ReportInput,
        key: str | None,
        fingerprint: str,
        now: datetime,
    ) -> "asyncio.Future[Received]":
        """Queue one report (received ``now``, its ``key`` checked already); the future is
        answered once its batch has committed."""
        return self.submit_all(rider_id=rider_id, reports=[(data, key, fingerprint, now)])[0]

    def submit_all(
        self,
        *,
        rider_id: uuid.UUID,
        reports: Sequence[tuple[ReportInput, str | None, str, datetime]],
    ) -> list["asyncio.Future[Received]"]:
        """Queue a rider's reports in this order (an offline queue flushed at once: a key
        that comes twice is answered as a retry of the first)."""
        self._ensure_running()
        loop = asyncio.get_running_loop()
        known = tickets.held_reference(self.database)
        answers = []
        claimed: set[tuple[uuid.UUID, str]] = set()
        for data, key, fingerprint, now in reports:
            answer: asyncio.Future[Received] = loop.create_future()
            answers.append(answer)
            if key is not None:
                entry = (rider_id, key)
                if entry in self._in_flight and entry not in claimed:
                    answer.set_exception(IdempotencyKeyInFlight())
                    continue
                self._in_flight.add(entry)
                claimed.add(entry)
            submission = Submission(rider_id, data, key, fingerprint, now, answer)
            if known is not None:
                check(submission, known, snap_m=self.settings.routing_snap_m)
            self._queue.put_nowait(submission)
        return answers

    # -- the task

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sentinel-intake")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Store what is queued (waiting at most ``timeout_s`` for it), then close the
        connection."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            self._task.cancel()
            with _suppress_cancel():
                await self._task
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            except Exception as error:  # never lose the task: answer the batch instead
                logger.exception("storing a batch of reports failed")
                self._answer_all(batch, error)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _answer_all(self, batch: list[Submission], error: BaseException) -> None:
        for submission in batch:
            self._answer(submission, error)

    def _answer(self, submission: Submission, outcome: Received | BaseException) -> None:
        if submission.key is not None:
            self._in_flight.discard((submission.rider_id, submission.key))
        if submission.answer.done():  # its request went away
            return
        if isinstance(outcome, BaseException):
            submission.answer.set_exception(outcome)
        else:
            submission.answer.set_result(outcome)

    async def _connect(self) -> tuple[BatchConnection, IntakeStatements]:
        if self._connection is not None and self._connection.broken:
            with _suppress_errors():
                await self._connection.close()
            self._connection = None
        if self._connection is None:
            self._connection = await connect_batches(self.database)
            self._statements = IntakeStatements(self._connection)
        assert self._statements is not None
        return self._connection, self._statements

    async def _store(self, batch: list[Submission]) -> None:
        """Store ``batch`` in one transaction, begun again if the world moved under it;
        if it fails otherwise, each report alone, so that one cannot sink the others."""
        for _ in range(MAX_ATTEMPTS):
            try:
                connection, statements = await self._connect()
            except Exception as error:
                logger.warning(
                    "the database is unavailable to intake", extra={"fields": {"error": str(error)}}
                )
                self._answer_all(batch, DatabaseBusy("the database is unavailable; retry shortly"))
                return
            try:
                await connection.begin()
                answers = await Batch(
                    database=self.database,
                    settings=self.settings,
                    render_receipt=self.render_receipt,
                    connection=connection,
                    statements=statements,
                    submissions=batch,
                ).store()
            except BeginAgain as why:
                await connection.rollback()
                if why.reload:
                    await self._reload()
                continue
            except DatabaseBusy as error:
                await connection.rollback()
                self._answer_all(batch, error)
                return
            except Exception as error:
                with _suppress_errors():
                    await connection.rollback()
                if _retryable(error):
                    continue
                if len(batch) > 1:
                    logger.warning(
                        "a batch of reports failed; storing each alone",
                        extra={
                            "fields": {
                                "reports": len(batch),
                                "error": f"{type(error).__name__}: {error}",
                            }
                        },
                    )
                    for submission in batch:
                        await self._store([submission])
                    return
                if _unavailable(error) or connection.broken:
                    logger.warning(
                        "the database failed a report", extra={"fields": {"error": str(error)}}
                    )
                    self._answer_all(
                        batch, DatabaseBusy("the database is unavailable; retry shortly")
                    )
                    return
                raise
            for submission, answer in zip(batch, answers, strict=True):
                self._answer(submission, answer)
            return
        self._answer_all(batch, DatabaseBusy("too much contention; retry shortly"))

    async def _reload(self) -> None:
        def load() -> Reference:
            with self.database.session() as session:
                return tickets.current_reference(session)

        await asyncio.to_thread(load)


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *_: Any) -> bool:
        return kind is asyncio.CancelledError


class _suppress_errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *_: Any) -> bool:
        return kind is not None and issubclass(kind, Exception)


def _sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None)


def _retryable(error: BaseException) -> bool:
    # A deadlock (with a merge that locks two tickets) or a serialisation failure: the
    # other transaction went on; this one will, begun again.
    return _sqlstate(error) in ("40P01", "40001")


def _unavailable(error: BaseException) -> bool:
    return type(error).__name__ == "OperationalError" or (_sqlstate(error) or "").startswith(
        ("08", "57P")
    )
