# Flowing Sentinel API and worker. The same image runs `sentinel serve` and `sentinel worker`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# SpatiaLite, so the image also runs on the embedded database; pg_dump and pg_restore
# (15, as the compose file's PostGIS) for `sentinel backup` and `sentinel restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsqlite3-mod-spatialite postgresql-client \
    && rm -rf /var/lib/apt/lists/*

# Installed as a package like any other (the migrations ship inside it), then the
# sources are gone: the image holds the installed copy only.
WORKDIR /tmp/build
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install . && rm -rf /tmp/build
WORKDIR /var/lib/sentinel

RUN useradd --system --uid 10001 --home-dir /var/lib/sentinel --create-home sentinel \
    && mkdir -p /var/lib/sentinel/media && chown -R sentinel /var/lib/sentinel
USER sentinel
ENV SENTINEL_MEDIA_URL=/var/lib/sentinel/media \
    SENTINEL_DATABASE_URL=sqlite:////var/lib/sentinel/sentinel.db

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sentinel", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
