#!/usr/bin/env bash
# Stop the daemons start.sh started (by their pid files) and cancel what is left in the queue.
state=$(realpath -m "$1")
scancel --user="$(id -un)" 2>/dev/null || true
for pid in "$state/slurmd.pid" "$state/slurmctld.pid"; do
  [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
done
exit 0
