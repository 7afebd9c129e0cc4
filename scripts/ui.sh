#!/usr/bin/env bash
# `make ui`: `dagster dev` that stops on Ctrl-C (or SIGTERM) within seconds, leaving no process behind.
# Dagster's dev command waits for its code servers, which wait out their heartbeat timeout (45 s and more; measured
# here: still running 60 s after Ctrl-C). So: dagster dev runs in a process group of its own; on Ctrl-C it gets the
# interrupt first, GRACE_S seconds to shut down (its webserver, daemon and runs stop cleanly), then the group is
# terminated, then killed. Usage: scripts/ui.sh <dagster dev command...>
set -u
grace="${GRACE_S:-10}"
setsid "$@" &
pid=$!
stop() {
  trap '' INT TERM
  echo "stopping dagster dev (up to ${grace} s)..." >&2
  kill -INT -- "-$pid" 2>/dev/null
  for _ in $(seq $((grace * 4))); do
    kill -0 -- "-$pid" 2>/dev/null || exit 0
    sleep 0.25
  done
  kill -TERM -- "-$pid" 2>/dev/null
  sleep 2
  kill -KILL -- "-$pid" 2>/dev/null
  exit 0
}
trap stop INT TERM
wait "$pid"
