#!/usr/bin/env bash
# `make ui`: `dagster dev` (and, when FILES_ROOT and FILES_PORT are set, the report pages' file server, run by
# FILES_PYTHON) that stops on Ctrl-C (or SIGTERM) within seconds, leaving no process behind.
# Dagster's dev command waits for its code servers, which wait out their heartbeat timeout (45 s and more; measured
# here: still running 60 s after Ctrl-C). So: dagster dev runs in a process group of its own; on Ctrl-C it gets the
# interrupt first, GRACE_S seconds to shut down (its webserver, daemon and runs stop cleanly), then the group is
# terminated, then killed. Usage: scripts/ui.sh <dagster dev command...>
set -u
grace="${GRACE_S:-10}"
groups=()
if [ -n "${FILES_ROOT:-}" ] && [ -n "${FILES_PORT:-}" ]; then
  setsid "${FILES_PYTHON:-python3}" -m synth_platform.file_server --root "$FILES_ROOT" --port "$FILES_PORT" &
  groups+=("$!")
  echo "report pages: http://127.0.0.1:$FILES_PORT (links in the assets' metadata)" >&2
fi
setsid "$@" &
pid=$!
groups+=("$pid")
stop() {
  trap '' INT TERM
  echo "stopping dagster dev (up to ${grace} s)..." >&2
  for group in "${groups[@]}"; do kill -INT -- "-$group" 2>/dev/null; done
  for _ in $(seq $((grace * 4))); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.25
  done
  for group in "${groups[@]}"; do kill -TERM -- "-$group" 2>/dev/null; done
  sleep 1
  for group in "${groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done
  exit 0
}
trap stop INT TERM
wait "$pid"
stop
