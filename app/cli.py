"""The ``sentinel`` command."""

import asyncio
import dataclasses
import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from typer.core import TyperGroup

from app import areas, ops, privacy, staff
from app import platforms as platform_service
from app.config import Settings, get_settings
from app.db import Database, migrate
from app.errors import AppError, ConfigurationError
from app.geo import CoordSys
from app.intake import IntakeWriter
from app.log import configure_logging
from app.media import media_store
from app.models import AreaLevel, StaffRole, utcnow
from app.ops import Worker
from app.schemas.areas import AreaImportResult
from app.schemas.reports import receipt_json
from app.tickets import calendar_warnings, seed_calendar


class _Commands(TyperGroup):
    """Turns the errors a user can cause into one line on stderr and exit status 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except (AppError, ConfigurationError) as exc:
            _fail(str(exc))
        except OperationalError as exc:
            _fail(f"the database does not answer: {str(exc.orig).strip().splitlines()[0]}")
        except Exception as exc:
            # Usage errors (a missing file, an unknown option value) carry their message.
            usage = getattr(exc, "format_message", None)
            _fail(usage() if usage else f"unexpected {type(exc).__name__}: {exc}")


cli = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Flowing Sentinel: riders report street problems, offices fix them.",
)
db_cli = typer.Typer(no_args_is_help=True, help="Database schema.")
areas_cli = typer.Typer(no_args_is_help=True, help="District, street and community boundaries.")
platform_cli = typer.Typer(no_args_is_help=True, help="Delivery platforms.")
staff_cli = typer.Typer(
    no_args_is_help=True, help="Street-office, district, admin and unit crew accounts."
)
cli.add_typer(db_cli, name="db")
cli.add_typer(areas_cli, name="areas")
cli.add_typer(platform_cli, name="platform")
privacy_cli = typer.Typer(no_args_is_help=True, help="Riders' personal information (PIPL).")
cli.add_typer(staff_cli, name="staff")
cli.add_typer(privacy_cli, name="privacy")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"sentinel: {message}", err=True)
    raise typer.Exit(1)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        _fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()))


def _database() -> Database:
    return Database(_settings().database_url)


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False) if as_json else text)


@cli.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the API (uvicorn)."""
    import uvicorn

    from app.server import APP, server_options

    settings = _settings()
    database = Database(settings.database_url)
    current, head = migrate.current_revision(database.engine), migrate.head_revision()
    database.dispose()
    if current != head:
        _fail(f"the schema is at {current}, the code expects {head}: run `sentinel db upgrade`")
    uvicorn.run(APP, host=host, port=port, workers=workers, **server_options(settings))


@cli.command()
def worker() -> None:
    """Run background jobs until SIGTERM or Ctrl-C (any number of workers may run)."""
    settings = _settings()
    configure_logging(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Worker(Database(settings.database_url), settings).run_until(stop)


@db_cli.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    settings = _settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"schema at {revision}", err=True)
    if revision == "head":
        database = Database(settings.database_url)
        with database.transaction() as session:
            for year in seed_calendar(session, utcnow().date()):
                typer.echo(f"working calendar {year} from chinesecalendar", err=True)
            for warning in calendar_warnings(session, utcnow()):
                typer.echo(f"warning: {warning}", err=True)
        database.dispose()


@db_cli.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" removes every table)."""
    migrate.downgrade(_settings().database_url, revision)
    typer.echo(f"schema at {revision}", err=True)


@areas_cli.command("import")
def areas_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    coord_sys: Annotated[CoordSys, typer.Option("--coord-sys")] = CoordSys.WGS84,
    level: Annotated[AreaLevel | None, typer.Option(help="for features without one")] = None,
    parent: Annotated[str | None, typer.Option(help="parent code for features without one")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import or update boundaries from a GeoJSON FeatureCollection (all or nothing)."""
    try:
        collection = json.loads(file.read_bytes())
    except ValueError:
        _fail(f"{file} is not JSON")
    with _database().transaction() as session:
        imported = areas.import_areas(
            session, collection, coord_sys=coord_sys, default_level=level, default_parent=parent
        )
    lines = [
        f"{'created' if a.created else 'updated'} {a.level} {a.code} {a.name}"
        + (" (geometry repaired)" if a.repaired else "")
        for a in imported
    ]
    _emit(
        as_json,
        AreaImportResult.of(imported).model_dump(mode="json"),
        "\n".join([*lines, f"{len(imported)} areas imported"]),
    )


@platform_cli.command("create")
def platform_create(
    code: str, name: Annotated[str, typer.Option()], as_json: JsonFlag = False
) -> None:
    """Register a platform and print its API key (shown once)."""
    with _database().transaction() as session:
        new = platform_service.create_platform(session, code=code, name=name)
    _emit(
        as_json,
        {"code": code, "api_key": new.api_key},
        f"platform {code} created\nAPI key (shown once): {new.api_key}",
    )


@staff_cli.command("create")
def staff_create(
    username: str,
    role: Annotated[StaffRole, typer.Option()],
    area: Annotated[str | None, typer.Option(help="street code (officer), district code")] = None,
    unit: Annotated[str | None, typer.Option(help="unit code (crew)")] = None,
    password: Annotated[str | None, typer.Option(help="generated when omitted")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a staff account."""
    settings = _settings()
    with Database(settings.database_url).transaction() as session:
        account = staff.Account(username, role, area, password=password, unit_code=unit)
        new = staff.create_staff(session, account, settings=settings)
    where = f"unit {unit}" if unit else f"area {area or '-'}"
    _emit(
        as_json,
        {
            "username": username,
            "password": new.password,
            "role": role.value,
            "area": area,
            "unit": unit,
        },
        f"{role} {username} created ({where})\npassword: {new.password}",
    )


@privacy_cli.command("purge")
def privacy_purge(
    older_than: Annotated[
        int | None,
        typer.Option(min=1, help="Days since a ticket ended (default SENTINEL_RETENTION_DAYS)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Count what would go; change nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove photos, free text and exact points of tickets that ended long ago."""
    settings = _settings()
    database = Database(settings.database_url)
    days = older_than or settings.retention_days
    purged = privacy.purge(
        database, media_store(settings), now=utcnow(), days=days, dry_run=dry_run
    )
    database.dispose()
    payload = {"older_than_days": days, "dry_run": dry_run, **dataclasses.asdict(purged)}
    verb = "would purge" if dry_run else "purged"
    _emit(
        as_json,
        payload,
        f"{verb} {purged.tickets} tickets ended over {days} days ago: {purged.reports} "
        f"reports, {purged.verifications} verifications, {purged.photos} photos; "
        f"{purged.unused_photos} unused photos",
    )


@cli.command("backup")
def backup_command(
    target: Annotated[Path, typer.Argument(help="A new or empty directory.")],
    media: Annotated[bool, typer.Option(help="Copy the photos too.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """A consistent copy of the database and the photos, while the service runs."""
    settings = _settings()
    database = Database(settings.database_url)
    try:
        manifest = ops.backup(database, media_store(settings), target=target, media=media)
    except ConfigurationError as error:
        _fail(str(error))
    finally:
        database.dispose()
    _emit(
        as_json,
        dataclasses.asdict(manifest),
        f"backed up {manifest.reports} reports on {manifest.tickets} tickets and "
        f"{manifest.blobs} photo files to {target} (schema {manifest.schema_revision})",
    )


@cli.command("restore")
def restore_command(
    source: Annotated[Path, typer.Argument(help="A directory `sentinel backup` wrote.")],
    as_json: JsonFlag = False,
) -> None:
    """Restore a backup into a new database (SQLite file, or empty PostgreSQL database)
    and the photo store; run `sentinel db upgrade` afterwards if the code is newer."""
    settings = _settings()
    try:
        manifest = ops.restore(settings.database_url, media_store(settings), source=source)
    except ConfigurationError as error:
        _fail(str(error))
    _emit(
        as_json,
        dataclasses.asdict(manifest),
        f"restored {manifest.reports} reports on {manifest.tickets} tickets and "
        f"{manifest.blobs} photo files from {source} (schema {manifest.schema_revision})",
    )


@cli.command()
def demo(
    as_json: JsonFlag = False,
    reports: Annotated[
        bool, typer.Option("--reports/--no-reports", help="sample reports with photos too")
    ] = True,
) -> None:
    """Load the Changning demo into an empty database and print its credentials."""
    settings = _settings()
    database = Database(settings.database_url)
    with database.transaction() as session:
        credentials = ops.load_demo(session, settings)
    if credentials is None:
        message = "the database already holds data: demo not loaded, nothing changed"
        typer.echo(message, err=True)
        if as_json:
            typer.echo(
                json.dumps({"loaded": False, "platforms": [], "staff": [], "message": message})
            )
        return
    tickets = 0
    if reports:
        writer = IntakeWriter(database, settings, render_receipt=receipt_json)
        tickets = asyncio.run(
            ops.submit_demo_reports(database, settings, writer=writer, now=utcnow())
        )
    payload = {
        "loaded": True,
        "platforms": credentials.platforms,
        "staff": credentials.staff,
        "tickets": tickets,
    }
    lines = [
        "Changning demo loaded (street and community boundaries are synthetic), "
        f"with {tickets} sample tickets.",
        "",
        "Platform API keys (shown once):",
    ]
    lines += [f"  {p['code']:<10} {p['api_key']}" for p in credentials.platforms]
    lines += ["", "Staff (POST /v1/auth/token):"]
    lines += [
        f"  {s['role']:<9} {s['username']:<20} {s['password']}  area {s['area'] or '-'}"
        for s in credentials.staff
    ]
    _emit(as_json, payload, "\n".join(lines))


def main() -> None:
    cli()
