# Sourced by scripts/run and scripts/test: a virtualenv with the project installed, and
# SpatiaLite for the embedded database. Safe to run again; it only does what is missing.
set -euo pipefail

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Flowing Sentinel needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    rm -f .venv/.installed-* && touch "$stamp"
fi

spatialite_present() {
    ldconfig -p 2>/dev/null | grep -q mod_spatialite \
        || ls /usr/lib/*/mod_spatialite.so* >/dev/null 2>&1 \
        || [ -n "${SPATIALITE_LIBRARY_PATH:-}" ]
}
if ! spatialite_present; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing SpatiaLite (libsqlite3-mod-spatialite)…" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            libsqlite3-mod-spatialite >/dev/null
    else
        echo "SpatiaLite is missing: sudo apt-get install libsqlite3-mod-spatialite" >&2
        exit 1
    fi
fi
