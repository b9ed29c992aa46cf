#!/usr/bin/env bash
# Stops what tests/slurm/setup.sh started in FOLDER (default: $GADMS_SLURM_DIR, else
# /tmp/gadms-slurm): slurmd, slurmctld, and munged when setup.sh started it. By their pid
# files only, so that nothing else is touched.
set -uo pipefail

DIR=${1:-${GADMS_SLURM_DIR:-/tmp/gadms-slurm}}

stop() {
    local pidfile=$1
    [ -s "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

stop "$DIR/slurmd.pid"
stop "$DIR/slurmctld.pid"
if [ -e "$DIR/started-munged" ]; then
    stop /run/munge/munged.pid
    rm -f "$DIR/started-munged"
fi
