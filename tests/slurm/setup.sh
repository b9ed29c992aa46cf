#!/usr/bin/env bash
# A one-node SLURM on this machine for the SLURM integration test (tests/slurm.rs): installs
# Debian's slurm-wlm and munge when they are missing, writes a configuration into a private
# folder, and starts munged, slurmctld and slurmd. Idempotent: a cluster that is up already
# is left as it is. Prints `SLURM_CONF=<file>` last; clients (sbatch, squeue, gadms-run's
# submission) find the cluster through that variable. Stop it with tests/slurm/stop.sh.
#
# Exit status 2 means SLURM cannot be set up here (not root, no apt-get, or the packages
# failed to install); the test then skips with this message. Any other failure (a daemon
# that does not come up) is an error.
#
# Usage: tests/slurm/setup.sh [FOLDER]   (default: $GADMS_SLURM_DIR, else /tmp/gadms-slurm)
set -euo pipefail

DIR=${1:-${GADMS_SLURM_DIR:-/tmp/gadms-slurm}}
CONF=$DIR/slurm.conf
HOST=$(hostname -s)

cannot() {
    echo "cannot set up SLURM here: $*" >&2
    exit 2
}

fail() {
    echo "SLURM set-up failed: $*" >&2
    exit 1
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The packages, with apt-get.
install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    command -v apt-get >/dev/null || cannot "slurm-wlm is not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    local packages=(slurm-wlm munge)
    apt-get install -y --no-install-recommends "${packages[@]}" >"$DIR/apt.log" 2>&1 \
        || { apt-get update >>"$DIR/apt.log" 2>&1 \
            && apt-get install -y --no-install-recommends "${packages[@]}" >>"$DIR/apt.log" 2>&1; } \
        || cannot "apt-get install slurm-wlm munge failed (see $DIR/apt.log)"
}

# munged runs once per machine; it is started only when no munged answers.
start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    [ -s /etc/munge/munge.key ] || cannot "/etc/munge/munge.key is missing (reinstall munge)"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    munged --force
    touch "$DIR/started-munged"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    fail "munged does not answer (see /var/log/munge/)"
}

write_config() {
    local cpus mem
    cpus=$(nproc)
    # A little under the machine's memory (MiB), as slurmd checks it.
    mem=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<CONF
# Written by tests/slurm/setup.sh: one node on this machine, no cgroups.
ClusterName=gadms-test
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=600
NodeName=$HOST CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
}

node_idle() { SLURM_CONF=$CONF sinfo --noheader --format=%t 2>/dev/null | grep -Eq '^(idle|mix|alloc)'; }

mkdir -p "$DIR"
if alive "$DIR/slurmctld.pid" && alive "$DIR/slurmd.pid" && node_idle; then
    echo "SLURM_CONF=$CONF"
    exit 0
fi
# The daemons run as root here (SlurmUser=root, munged's folders), as apt-get does.
[ "$(id -u)" = 0 ] || cannot "it needs root (to install slurm-wlm and run its daemons as root)"
install_packages
start_munge
write_config
# A fresh controller forgets the jobs of an earlier cluster in this folder (-c).
alive "$DIR/slurmctld.pid" || slurmctld -c -f "$CONF"
alive "$DIR/slurmd.pid" || slurmd -f "$CONF"
for _ in $(seq 60); do
    if node_idle; then
        echo "SLURM_CONF=$CONF"
        exit 0
    fi
    sleep 0.5
done
fail "the node did not come up within 30 s (see $DIR/log/)"
