#!/usr/bin/env bash
# A real one-node Slurm cluster on localhost for tests and CI: munged, MariaDB, slurmdbd, slurmctld, slurmd.
#   slurm/cluster.sh install   apt-get the packages (root; idempotent)
#   slurm/cluster.sh start     write configs under $SRT_SLURM_DIR (default /tmp/srt-slurm), start every daemon,
#                              wait until the node is idle (idempotent: a running cluster is left as it is)
#   slurm/cluster.sh stop      stop the daemons this script started
#   slurm/cluster.sh status    exit 0 when the node answers sinfo
set -euo pipefail

DIR=${SRT_SLURM_DIR:-/tmp/srt-slurm}
CLUSTER=srtlocal
HOST=$(hostname -s)
export SLURM_CONF=/etc/slurm/slurm.conf

log() { echo "slurm/cluster.sh: $*" >&2; }

wait_for() {  # wait_for SECONDS COMMAND...
  local limit=$1; shift
  for _ in $(seq 1 "$((limit * 4))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v munged >/dev/null \
     && command -v mysqld_safe >/dev/null; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || { log "install needs root"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

node_ready() { sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }

start_munge() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "/usr/sbin/munged --force" 2>/dev/null || /usr/sbin/munged --force
  else
    /usr/sbin/munged --force
  fi
  wait_for 10 sh -c 'munge -n | unmunge'
}

start_mariadb() {
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mysql_install_db --user=mysql >/dev/null 2>&1
    (setsid mysqld_safe --user=mysql >"$DIR/mysqld.out" 2>&1 &)
    wait_for 60 mysqladmin ping || { log "MariaDB did not start"; exit 1; }
  fi
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpass';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

write_configs() {
  mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
  local node mem
  node=$(slurmd -C | head -1)
  mem=$(echo "$node" | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
  node=$(echo "$node" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 9 / 10))/")
  cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpass
StorageLoc=slurm_acct_db
LogFile=$DIR/slurmdbd.log
PidFile=$DIR/slurmdbd.pid
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobRequeue=1
KillWait=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  if node_ready; then log "cluster already up"; return 0; fi
  install
  mkdir -p "$DIR"
  start_munge
  start_mariadb
  write_configs
  pgrep -x slurmdbd >/dev/null || slurmdbd
  wait_for 30 sacctmgr -n list cluster || { log "slurmdbd did not answer; see $DIR/slurmdbd.log"; exit 1; }
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -i add account srt Cluster="$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -i add user root Account=srt Cluster="$CLUSTER" >/dev/null 2>&1 || true
  pgrep -x slurmctld >/dev/null || slurmctld
  wait_for 30 scontrol ping || { log "slurmctld did not start; see $DIR/slurmctld.log"; exit 1; }
  pgrep -x slurmd >/dev/null || slurmd
  wait_for 60 node_ready || { log "node did not become idle; see $DIR/slurmd.log"; exit 1; }
  log "cluster $CLUSTER up: $(sinfo -h -o '%P %D %T %c CPUs')"
}

stop() {
  for d in slurmd slurmctld slurmdbd; do pkill -x "$d" 2>/dev/null || true; done
  mysqladmin shutdown >/dev/null 2>&1 || true
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) node_ready ;;
  *) echo "usage: slurm/cluster.sh install|start|stop|status" >&2; exit 2 ;;
esac
