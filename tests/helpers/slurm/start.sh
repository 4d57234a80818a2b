#!/usr/bin/env bash
# Bring up a single-node SLURM cluster on this machine (Debian's slurm-wlm and munge), for the
# workflow's SLURM test. Needs root. Usage: start.sh STATE_DIR; stop it with stop.sh STATE_DIR.
# Prints the partition name once the node accepts jobs.
set -euo pipefail
state=$(realpath -m "$1")
mkdir -p "$state"/{spool,ctld,log}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: the key and the daemon, as the munge user
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
mkdir -p /run/munge /var/lib/munge /var/log/munge
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged
fi

node=$(hostname -s)
cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=cycle-test
SlurmctldHost=$node
AuthType=auth/munge
# a requeued batch job may start again once its credential expires (default 120 s): the requeue test waits less
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
# schedule pending jobs (a requeued one, once eligible) within seconds, not the default 30-60 s
SchedulerParameters=sched_interval=5,bf_interval=5
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
MpiDefault=none
NodeName=$node CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

# daemons a killed earlier run left behind would hold the ports with that run's (deleted) state
for daemon in slurmd slurmctld; do
  pkill -x "$daemon" || continue
  for _ in $(seq 50); do pgrep -x "$daemon" >/dev/null || break; sleep 0.2; done
done
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do
  if sinfo -h -o "%t" 2>/dev/null | grep -qE "^(idle|mix|alloc)"; then
    echo debug
    exit 0
  fi
  sleep 1
done
echo "SLURM did not come up: $(sinfo 2>&1 | tail -3); see $state/log" >&2
exit 1
