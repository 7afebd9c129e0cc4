#!/usr/bin/env bash
# What `make` needs beyond this repository, checked before anything is built or run; every missing piece is named
# with the command that installs or starts it (all of them at once), and the exit status is 2 when one is missing.
#   scripts/prerequisites.sh install   Python 3.11 for .venv (make materialize, make test)
#   scripts/prerequisites.sh test      also: Chromium (the HTML report's browser tests) and the local PostgreSQL
# PYTHON (default python3) and PGPORT (default 5432, on 127.0.0.1) say what to check.
set -uo pipefail
what="${1:-install}"
python="${PYTHON:-python3}"
missing=()

if ! command -v "$python" >/dev/null 2>&1; then
  missing+=("Python 3.11 ($python not found): apt-get install -y python3.11 python3.11-venv, or make PYTHON=/path/to/python3.11")
elif ! "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
  missing+=("Python 3.11 ($python is $("$python" -c 'import platform; print(platform.python_version())'); the lock is built for 3.11): make PYTHON=/path/to/python3.11")
elif ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=("Python's venv module ($python cannot create .venv): apt-get install -y python3.11-venv")
fi

if [ "$what" = "test" ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    missing+=("Chromium (the HTML report's tests open it headless): apt-get install -y --no-install-recommends chromium")
  fi
  port="${PGPORT:-5432}"
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    missing+=("PostgreSQL on 127.0.0.1:$port (the tests use it for real): pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start  (not installed: apt-get install -y postgresql-15)")
  fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "make $what cannot start; missing:" >&2
  for item in "${missing[@]}"; do echo "  - $item" >&2; done
  exit 2
fi
