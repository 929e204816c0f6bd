"""A streaming replica of the local PostgreSQL cluster, for a bench that sends the reads
which may lag to a read replica (``SENTINEL_READ_DATABASE_URL``): made with
``pg_basebackup``, started as a hot standby on another port, its lag read, then stopped
and removed. Run from the project root (as root, or as the cluster's owner)::

    .venv/bin/python bench/replica.py start [--dir DIR] [--port 5433]   # prints its URL
    .venv/bin/python bench/replica.py lag [--port 5433]
    .venv/bin/python bench/replica.py stop [--dir DIR] [--port 5433] [--keep]

What it does to the primary: when the primary refuses replication connections from
127.0.0.1, ``start`` adds ``host replication all 127.0.0.1/32 trust`` to its pg_hba.conf
(this machine's local connections are trusted already) and reloads it, once, and says
so. It makes a physical replication slot, ``sentinel_replica_<port>``, so that the
primary keeps the WAL the replica has not replayed yet; ``stop`` drops it (a slot left
behind makes the primary keep WAL until its disk is full).

The copy holds the whole cluster, every database on it. The replica runs with the
primary's settings from its configuration file (besides where it listens and its files),
as a hot standby with ``hot_standby_feedback`` on: a long read on the replica is not
cancelled by the primary's vacuum, which keeps the rows it reads a little longer.
Running as root, every PostgreSQL program runs as the ``postgres`` user (the server
refuses root), and the directory is made theirs.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_URL

PORT = 5433
OWNER = "postgres"
HBA_LINE = "host replication all 127.0.0.1/32 trust"
# Settings of the primary's configuration file that name its own files, addresses or
# certificates: the replica has its own.
NOT_COPIED = {
    "cluster_name",
    "data_directory",
    "external_pid_file",
    "hba_file",
    "ident_file",
    "listen_addresses",
    "port",
    "unix_socket_directories",
}


def slot_of(port: int) -> str:
    """The replication slot that keeps the WAL of the replica on ``port``."""
    return f"sentinel_replica_{port}"


def _conninfo(url: str, **changes: Any) -> dict[str, Any]:
    parsed = make_url(url).set(**changes)
    return {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or OWNER,
        "password": parsed.password,
        "dbname": parsed.database or "postgres",
    }


def _connect(url: str, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(**_conninfo(url), autocommit=True, connect_timeout=5, **options)


def _as_owner(command: list[str]) -> list[str]:
    """``command`` as the cluster's owner: PostgreSQL's programs refuse to run as root."""
    return ["runuser", "-u", OWNER, "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], *, show_progress: bool = False) -> None:
    """``command`` as the cluster's owner; its errors, if it fails, in the exception (its
    progress on stderr, if asked for, as it goes)."""
    done = subprocess.run(
        _as_owner(command),
        stdout=subprocess.PIPE,
        stderr=None if show_progress else subprocess.PIPE,
        text=True,
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout or "see above").strip()
        raise RuntimeError(f"{Path(command[0]).name} failed: {said}")


def _value(connection: psycopg.Connection[Any], query: LiteralString) -> Any:
    """The one value ``query`` answers."""
    row = connection.execute(query).fetchone()
    assert row is not None
    return row[0]


def _bin(primary: psycopg.Connection[Any]) -> Path:
    """The primary's PostgreSQL programs (pg_basebackup must be of its major version)."""
    major = int(_value(primary, "SHOW server_version_num")) // 10000
    return Path(os.environ.get("SENTINEL_PG_BIN", f"/usr/lib/postgresql/{major}/bin"))


def _replication_refused(url: str) -> str | None:
    """Why the primary refuses a replication connection from here, or None."""
    try:
        with _connect(url, replication="true"):
            return None
    except psycopg.OperationalError as error:
        return str(error).strip()


def allow_replication(url: str = PG_URL) -> bool:
    """Lets 127.0.0.1 connect to the primary for replication, if it does not already:
    ``HBA_LINE`` appended to its pg_hba.conf and the configuration reloaded. True if it
    had to."""
    if _replication_refused(url) is None:
        return False
    with _connect(url) as primary:
        hba = Path(_value(primary, "SHOW hba_file"))
        try:
            with hba.open("a") as file:
                file.write(
                    "\n# bench/replica.py: streaming replicas of this cluster on this machine\n"
                    f"{HBA_LINE}\n"
                )
        except PermissionError:
            raise RuntimeError(f"add `{HBA_LINE}` to {hba} and reload PostgreSQL") from None
        primary.execute("SELECT pg_reload_conf()")
    for _ in range(50):  # the reload is signalled; the postmaster reads the file soon after
        why = _replication_refused(url)
        if why is None:
            return True
        time.sleep(0.1)
    raise RuntimeError(f"replication connections are still refused after adding them: {why}")


def _configuration(primary: psycopg.Connection[Any], directory: Path, port: int) -> str:
    copied = primary.execute(
        "SELECT name, current_setting(name) FROM pg_settings "
        "WHERE source = 'configuration file' ORDER BY name"
    ).fetchall()
    lines = [
        f"{name} = '{value.replace(chr(39), chr(39) * 2)}'"
        for name, value in copied
        if name not in NOT_COPIED and not name.startswith("ssl")
    ]
    return "\n".join(
        [
            "# A hot standby of the local cluster, made by bench/replica.py.",
            "# The primary's settings, from its configuration file:",
            *lines,
            "# The replica's own:",
            f"cluster_name = 'replica-{port}'",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = '{directory}'",
            "hot_standby = on",
            "hot_standby_feedback = on",
            "",
        ]
    )


def _wait_for_replica(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with _connect(url) as replica:
                if _value(replica, "SELECT pg_is_in_recovery()"):
                    return
                raise RuntimeError("the server on the replica's port is not a standby")
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_replica(
    directory: Path,
    port: int = PORT,
    *,
    primary_url: str = PG_URL,
    progress: bool = False,
    timeout_s: float = 600,
) -> str:
    """A streaming replica of the cluster of ``primary_url``, copied into ``directory``
    (new or empty) and running as a hot standby on 127.0.0.1:``port``, ready for
    connections: its URL (``primary_url``'s, on the replica's port)."""
    directory = directory.resolve()
    if directory.exists() and any(directory.iterdir()):
        raise RuntimeError(f"{directory} is not empty: stop_replica() it, or name another")
    if allow_replication(primary_url):
        print(f"added `{HBA_LINE}` to the primary's pg_hba.conf and reloaded it", file=sys.stderr)
    slot = slot_of(port)
    with _connect(primary_url) as primary:
        bin_dir = _bin(primary)
        _drop_slot(primary, slot)  # one a replica stopped without stop_replica() left
        configuration = _configuration(primary, directory, port)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(directory, OWNER, OWNER)
    source = _conninfo(primary_url)
    _run(
        [
            str(bin_dir / "pg_basebackup"),
            *("-h", source["host"], "-p", str(source["port"]), "-U", source["user"]),
            *("-D", str(directory), "-R", "-X", "stream", "-C", "-S", slot),
            "--checkpoint=fast",
            *(["--progress"] if progress else []),
        ],
        show_progress=progress,
    )
    # The primary's pg_hba.conf and postgresql.conf live beside its data directory on
    # Debian, not in it, so the copy has none: the replica gets its own.
    for name, text in (
        ("postgresql.conf", configuration),
        ("pg_hba.conf", "local all all trust\nhost all all 127.0.0.1/32 trust\n"),
        ("pg_ident.conf", ""),
    ):
        path = directory / name
        path.write_text(text)
        if os.geteuid() == 0:
            shutil.chown(path, OWNER, OWNER)
    _run(
        [
            str(bin_dir / "pg_ctl"),
            *("-D", str(directory), "-l", str(directory / "replica.log")),
            *("-o", f"-p {port} -c hot_standby=on", "-w", "-t", str(int(timeout_s)), "start"),
        ]
    )
    url = make_url(primary_url).set(port=port).render_as_string(hide_password=False)
    _wait_for_replica(url, timeout_s)
    return url


@dataclass(frozen=True)
class ReplicaLag:
    """How far the replica is behind, as the primary sees it (``pg_stat_replication``:
    seconds from a commit on the primary to the replica's writing, flushing, replaying
    it; None while there is nothing to measure, when the replica has caught up and the
    primary is idle) and as the replica sees it (seconds since the commit it replayed
    last, which also grows while the primary commits nothing: ``caught_up`` says whether
    it has replayed everything it received)."""

    state: str | None
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None
    behind_bytes: int | None
    since_last_replayed_commit_s: float | None
    caught_up: bool

    def __str__(self) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f} s"

        return (
            f"state {self.state or 'not connected'}; lag: write {seconds(self.write_lag_s)}, "
            f"flush {seconds(self.flush_lag_s)}, replay {seconds(self.replay_lag_s)}; "
            f"{'-' if self.behind_bytes is None else self.behind_bytes} bytes of WAL "
            f"behind; last replayed commit {seconds(self.since_last_replayed_commit_s)} ago; "
            f"{'caught up' if self.caught_up else 'replaying'}"
        )


def replica_lag(replica_url: str, *, primary_url: str = PG_URL) -> ReplicaLag:
    """The replica's lag now (it answers on ``replica_url``, as ``start_replica`` said)."""
    port = make_url(replica_url).port or PORT
    with _connect(primary_url) as primary:
        row = primary.execute(
            "SELECT r.state, extract(epoch FROM r.write_lag)::float8, "
            "extract(epoch FROM r.flush_lag)::float8, extract(epoch FROM r.replay_lag)::float8, "
            "pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint "
            "FROM pg_stat_replication AS r "
            "JOIN pg_replication_slots AS s ON s.active_pid = r.pid WHERE s.slot_name = %s",
            (slot_of(port),),
        ).fetchone()
    with _connect(replica_url) as replica:
        seen = replica.execute(
            "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, "
            "pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()"
        ).fetchone()
    assert seen is not None
    since, caught_up = seen
    state, write, flush, replay, behind = row if row else (None, None, None, None, None)
    return ReplicaLag(state, write, flush, replay, behind, since, bool(caught_up))


def _drop_slot(primary: psycopg.Connection[Any], slot: str, wait_s: float = 30) -> None:
    """Drops ``slot`` once no replica uses it (a stopping replica lets go of it soon)."""
    deadline = time.monotonic() + wait_s
    while True:
        row = primary.execute(
            "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        if row is None:
            return
        if not row[0]:
            primary.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"a replica still uses the replication slot {slot}")
        time.sleep(0.2)


def stop_replica(
    directory: Path, port: int = PORT, *, primary_url: str = PG_URL, remove: bool = True
) -> None:
    """Stops the replica in ``directory``, drops its replication slot on the primary, and
    (``remove``) deletes its copy of the cluster."""
    directory = directory.resolve()
    with _connect(primary_url) as primary:
        bin_dir = _bin(primary)
        if (directory / "postmaster.pid").exists():
            _run([str(bin_dir / "pg_ctl"), "-D", str(directory), "-m", "fast", "-w", "stop"])
        _drop_slot(primary, slot_of(port))
    if remove and directory.exists():
        shutil.rmtree(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("command", choices=["start", "lag", "stop"])
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--dir", type=Path, help="default: /var/lib/postgresql/replica-PORT")
    parser.add_argument("--pg-url", default=os.environ.get("SENTINEL_BENCH_PG_URL", PG_URL))
    parser.add_argument("--keep", action="store_true", help="stop: keep the copy on disk")
    args = parser.parse_args()
    directory = args.dir or Path(f"/var/lib/postgresql/replica-{args.port}")
    try:
        if args.command == "start":
            started = time.monotonic()
            url = start_replica(directory, args.port, primary_url=args.pg_url, progress=True)
            print(
                f"replica of {args.pg_url} in {directory}, up in {time.monotonic() - started:.0f} s"
            )
            print(url)
        elif args.command == "lag":
            replica_url = make_url(args.pg_url).set(port=args.port)
            print(
                replica_lag(
                    replica_url.render_as_string(hide_password=False), primary_url=args.pg_url
                )
            )
        else:
            stop_replica(directory, args.port, primary_url=args.pg_url, remove=not args.keep)
            print(
                f"stopped; slot {slot_of(args.port)} dropped"
                + ("" if args.keep else f", {directory} removed")
            )
    except (RuntimeError, psycopg.OperationalError) as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
