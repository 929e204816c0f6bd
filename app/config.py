"""Settings, read from ``SENTINEL_*`` environment variables and a ``.env`` file."""

from enum import StrEnum
from functools import cache
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import ArgumentError

from app.db import is_embedded

PLACEHOLDER_SECRETS = frozenset(
    {"", "changethis", "change-me", "changeme", "secret", "dev", "development", "insecure"}
)
MIN_SECRET_LENGTH = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTINEL_", env_file=".env", extra="ignore")

    env: Environment = Environment.PRODUCTION
    database_url: str = "sqlite:///./sentinel.db"
    secret_key: str = "changethis"
    # Where photos are kept: a directory, or s3://bucket/prefix on S3-compatible object
    # storage (credentials the AWS way: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
    # profile or an instance role; AWS_DEFAULT_REGION). SENTINEL_MEDIA_DIR is the old name.
    media_url: str = Field(
        default="./media",
        min_length=1,
        validation_alias=AliasChoices("SENTINEL_MEDIA_URL", "SENTINEL_MEDIA_DIR", "media_url"),
    )
    # The object store's address when it is not AWS (OSS, COS, MinIO, Ceph), and how
    # buckets are addressed: "virtual" (bucket.host, which OSS requires), "path" or "auto".
    s3_endpoint_url: str | None = None
    s3_addressing_style: Literal["auto", "virtual", "path"] = "auto"
    # A photo's blob written this recently is spared by the deletes of other photos with
    # the same bytes (an upload of them may be about to commit); the sweep takes it later.
    media_delete_grace_s: float = Field(default=3600, ge=0)
    # Days after a ticket is closed that its reports keep their photos, free text and
    # exact points (PIPL art. 19: no longer than the purpose needs).
    retention_days: int = Field(default=180, ge=1)

    # Connections each process keeps open; PostgreSQL's max_connections must cover
    # db_pool_size (+10 overflow) times the number of processes.
    db_pool_size: int = Field(default=40, ge=1)
    # Requests working with the database at once, per process (never more than the pool
    # leaves a spare connection for). The others wait their turn on the event loop, which
    # costs nothing; more at once would only be more threads taking turns at the
    # interpreter with intake's writer, each slower, and intake slower with them.
    db_requests_at_once: int = Field(default=8, ge=1)
    # How long a request waits for its turn before it is answered 503 (Retry-After): when
    # more come than the process can answer, those it can are answered in time and the
    # rest at once, rather than every one late, after its client has given up.
    db_turn_wait_s: float = Field(default=10.0, gt=0)
    # A read replica of the PostgreSQL database (a hot standby fed by streaming
    # replication), for the reads whose answers may lag by seconds: the offices'
    # dashboards and statistics, the platforms' statistics, Open311's reads, the public
    # page, the exports staff download. Unset, they read the database. Its transactions
    # are read-only, whatever the URL names. read_db_pool_size: its connections per process.
    read_database_url: str | None = None
    read_db_pool_size: int = Field(default=10, ge=1)
    routing_snap_m: float = Field(default=150.0, ge=0)
    rider_token_ttl_h: float = Field(default=24.0, gt=0)
    staff_token_ttl_h: float = Field(default=12.0, gt=0)
    max_upload_mb: float = Field(default=10.0, gt=0)
    # How long a client may take over a request's headers (from its connection, or from
    # the request's first byte), and may pause between pieces of its body; a request that
    # stalls longer is answered 408 and its connection closed. A rider's slow upload that
    # keeps moving is never cut.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    rider_reports_per_hour: int = Field(default=60, ge=1)
    rider_sightings_per_hour: int = Field(default=20, ge=1)
    # How long the signed photo URLs Open311 answers work (they end on the hour).
    open311_media_ttl_h: float = Field(default=24.0, gt=0)
    # A rider's photos: how many in an hour and in a day, how many decoded at once; and
    # how long one nobody used (no report, sighting or verification) is kept.
    rider_photos_per_hour: int = Field(default=90, ge=1)
    rider_photos_per_day: int = Field(default=400, ge=1)
    rider_photos_at_once: int = Field(default=2, ge=1)
    unused_photo_hours: float = Field(default=6.0, gt=0)
    # Photos decoded at once in a process (each may take some 500 MB and two seconds of a
    # core), how long an upload may wait for its turn, and how long its decoding may take
    # before the upload is answered 503 (with Retry-After).
    photo_decoders: int = Field(default=2, ge=1)
    photo_turn_wait_s: float = Field(default=5.0, gt=0)
    photo_decode_limit_s: float = Field(default=20.0, gt=0)
    # Each photo decoded in a process of its own, so that the API's process keeps its
    # interpreter (and its core) for requests; false: in the API's own threads.
    photo_decoding_processes: bool = True
    # Days after a missing-person alert closes that its photos, words and sightings go.
    alert_retention_days: float = Field(default=7, gt=0)
    auto_close_h: float = Field(default=72.0, gt=0)
    # None means "on when the database is the embedded SQLite one".
    embedded_worker: bool | None = None
    # Webhook URLs must resolve to public addresses (no SSRF into the service's own
    # network); tests and development turn this on to deliver to 127.0.0.1.
    allow_private_webhooks: bool = False
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    # Channels (WeCom, DingTalk, Feishu, e-mail): the SMTP server e-mail goes through
    # (smtp://[user:password@]host[:port][?from=address&starttls=1], or smtps://…), and
    # the seconds between a channel's messages beyond its burst (WeCom's robots take 20
    # a minute).
    smtp_url: str | None = None
    channel_min_interval_s: float = Field(default=3.0, ge=0)
    # Days after a ticket's resolution that its reporters may rate the fix.
    feedback_days: float = Field(default=7, gt=0)
    # A ticket late by more than this share of its time allowance is escalated.
    escalate_after: float = Field(default=0.5, ge=0)
    # How long a worker holds what it claimed (a webhook event, a forwarded ticket)
    # before another may take it up: the time a worker that died keeps it waiting.
    worker_lease_s: float = Field(default=600.0, gt=0)

    # Cost of staff password hashes (argon2id). Tests lower them; production keeps
    # the library's defaults (RFC 9106's second recommended option).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    # The console's base map: none by default (the console needs nothing from outside
    # the machine). A tile URL template ({z}/{x}/{y}, {s} for subdomains) with its
    # attribution, and the datum its tiles are drawn in: Tianditu's CGCS2000 is WGS-84
    # to the centimetre; Amap's and Tencent's are GCJ-02, and every overlay is shifted
    # to match them.
    # Mark the console's cookies Secure whatever the request's scheme (None: when it came
    # over https), for a TLS proxy whose forwarded headers are not trusted.
    console_secure_cookies: bool | None = None
    console_tiles_url: str | None = None
    console_tiles_attribution: str = ""
    console_tiles_subdomains: str = ""
    console_tiles_datum: Literal["wgs84", "gcj02"] = "wgs84"
    # The public page of what was reported and fixed (/public/); off: 404.
    public_page: bool = True
    # How long a process keeps the public per-street figures before counting again.
    public_figures_max_age_s: float = Field(default=300.0, ge=0)

    # The bearer token of the operator's tools: /metrics and /readyz's details. Without
    # one, only callers on this machine's loopback get them.
    ops_token: str | None = None

    # The service's public address, e.g. https://sentinel.changning.gov.cn (with the path
    # it is served under, if any): every absolute URL it writes (Open311's discovery,
    # media_url and next-page Link; links in messages) starts with it, whatever the
    # request's Host header says. Unset, a Host is written back only when its name is
    # one of trusted_hosts (comma-separated; the machine's own, for development) and
    # its port none or the server's; any other gets relative URLs. An echoed Host would
    # poison a shared cache's copy for every client (Host: evil.example).
    public_url: str | None = None
    trusted_hosts: str = "localhost,127.0.0.1"

    log_level: str = "INFO"
    # FastAPI's native OpenTelemetry (traces, metrics, logs to the providers configured
    # the OpenTelemetry way); off by default: the service has its own metrics and log.
    opentelemetry: bool = False

    @property
    def run_embedded_worker(self) -> bool:
        if self.embedded_worker is not None:
            return self.embedded_worker
        return is_embedded(self.database_url)

    @field_validator("read_database_url", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _replica_of_a_server(self) -> Self:
        # Refused rather than ignored: an operator who sets it believes the primary is
        # spared those reads, and a warning in a log would let that belief stand. The
        # embedded database has no replica to read (SQLite is one file, one process's).
        if self.read_database_url is None:
            return self
        try:
            embedded = is_embedded(self.database_url) or is_embedded(self.read_database_url)
        except ArgumentError:
            raise ValueError(
                "SENTINEL_READ_DATABASE_URL is not a database URL "
                "(postgresql+psycopg://user@host:port/database)"
            ) from None
        if embedded:
            raise ValueError(
                "SENTINEL_READ_DATABASE_URL names a read replica of a PostgreSQL database: "
                "both it and SENTINEL_DATABASE_URL must be PostgreSQL (the embedded SQLite "
                "database has none); unset it"
            )
        return self

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:  # not a number
            port_ok = False
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or not port_ok
            or "@" in parts.netloc
            or "?" in url
            or "#" in url
        ):
            raise ValueError(
                "SENTINEL_PUBLIC_URL is the service's address: http(s)://host[:port][/path], "
                "e.g. https://sentinel.changning.gov.cn"
            )
        return url

    @property
    def trusted_host_names(self) -> frozenset[str]:
        return frozenset(
            name.strip().strip("[]").lower()
            for name in self.trusted_hosts.split(",")
            if name.strip()
        )

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        if self.env is not Environment.DEVELOPMENT and (
            self.secret_key.strip().lower() in PLACEHOLDER_SECRETS
            or len(self.secret_key) < MIN_SECRET_LENGTH
        ):
            raise ValueError(
                "SENTINEL_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters outside development "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"), '
                "or set SENTINEL_ENV=development"
            )
        return self


@cache
def get_settings() -> Settings:
    return Settings()
