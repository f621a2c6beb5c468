#!/usr/bin/env bash
# A real one-node Slurm cluster of its own on localhost for tests and CI: munged, MariaDB, slurmdbd, slurmctld and
# slurmd, every one with its config, key, socket, ports, state and pid file under $SRT_SLURM_DIR. It never reads or
# writes /etc/slurm, /etc/munge or a system database, and never talks to a cluster it did not start: a Slurm
# cluster this machine belongs to is left alone (its sinfo may answer; this one answers under its own SLURM_CONF).
#   slurm/cluster.sh install   apt-get the packages (root; idempotent)
#   slurm/cluster.sh start     write the configs, start every daemon, wait until the node is idle (idempotent:
#                              a cluster this script started is left as it is). Installs the packages when they
#                              are missing only with CI=true or SRT_SLURM_INSTALL=1; otherwise it says so and fails
#   slurm/cluster.sh stop      stop the daemons this script started (by their pid files)
#   slurm/cluster.sh status    exit 0 when this cluster's node answers sinfo
#   slurm/cluster.sh env       print `export SLURM_CONF=...`: eval it before sbatch/srt-scale talk to this cluster
# Settings: SRT_SLURM_DIR (default /tmp/srt-slurm), SRT_SLURM_PORT (default 16817: slurmctld; +1 slurmd,
# +2 slurmdbd, +3 MariaDB), SRT_SLURM_CLUSTER (default srtlocal).
set -euo pipefail

DIR=${SRT_SLURM_DIR:-/tmp/srt-slurm}
PORT=${SRT_SLURM_PORT:-16817}
CLUSTER=${SRT_SLURM_CLUSTER:-srtlocal}
HOST=$(hostname -s)
MUNGE_SOCKET=$DIR/munge/munge.socket
DB_SOCKET=$DIR/mysqld.sock
export SLURM_CONF=$DIR/slurm.conf

log() { echo "slurm/cluster.sh: $*" >&2; }

wait_for() {  # wait_for SECONDS COMMAND...
  local limit=$1; shift
  for _ in $(seq 1 "$((limit * 4))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

installed() {
  command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v munged >/dev/null \
    && command -v mysqld_safe >/dev/null
}

install() {
  installed && return 0
  [ "$(id -u)" = 0 ] || { log "install needs root"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq slurm-wlm munge slurmdbd mariadb-server >/dev/null
}

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }  # alive NAME: its pid file's process runs

node_ready() {
  [ -f "$SLURM_CONF" ] && alive slurmctld && sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'
}

start_munge() {
  alive munged && return 0
  mkdir -p "$DIR/munge"
  chmod 755 "$DIR/munge"
  [ -f "$DIR/munge/munge.key" ] || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 2>/dev/null
  chmod 400 "$DIR/munge/munge.key"
  munged --force --socket="$MUNGE_SOCKET" --key-file="$DIR/munge/munge.key" --pid-file="$DIR/munged.pid" \
    --log-file="$DIR/munged.log" --seed-file="$DIR/munge/munged.seed"
  wait_for 10 sh -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'" \
    || { log "munged did not start; see $DIR/munged.log"; exit 1; }
}

start_mariadb() {
  local db=(mysql --no-defaults --socket="$DB_SOCKET" -u root)
  if ! alive mysqld; then
    [ -d "$DIR/mysql/mysql" ] || mysql_install_db --no-defaults --user="$(id -un)" --datadir="$DIR/mysql" \
      --auth-root-authentication-method=socket --skip-test-db >"$DIR/mysqld.out" 2>&1
    (setsid mysqld_safe --no-defaults --user="$(id -un)" --datadir="$DIR/mysql" --socket="$DB_SOCKET" \
      --port="$((PORT + 3))" --bind-address=127.0.0.1 --pid-file="$DIR/mysqld.pid" \
      --log-error="$DIR/mysqld.log" >>"$DIR/mysqld.out" 2>&1 &)
    wait_for 60 "${db[@]}" -e "SELECT 1" || { log "MariaDB did not start; see $DIR/mysqld.log"; exit 1; }
  fi
  "${db[@]}" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
                 CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpass';
                 GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
}

write_configs() {
  mkdir -p "$DIR/state" "$DIR/spool"
  local node mem user
  user=$(id -un)
  node=$(slurmd -C | head -1)
  mem=$(echo "$node" | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
  node=$(echo "$node" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 9 / 10))/")
  cat > "$DIR/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT + 2))
SlurmUser=$user
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$((PORT + 3))
StorageUser=slurm
StoragePass=slurmpass
StorageLoc=slurm_acct_db
LogFile=$DIR/slurmdbd.log
PidFile=$DIR/slurmdbd.pid
CONF
  chmod 600 "$DIR/slurmdbd.conf"
  cat > "$SLURM_CONF" <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$user
AuthType=auth/munge
AuthInfo=cred_expire=10,socket=$MUNGE_SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
PlugStackConfig=$DIR/plugstack.conf
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
AccountingStoragePort=$((PORT + 2))
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  : > "$DIR/plugstack.conf"
}

start() {
  if node_ready; then log "cluster $CLUSTER already up (SLURM_CONF=$SLURM_CONF)"; return 0; fi
  if ! installed; then
    if [ "${CI:-}" = true ] || [ "${SRT_SLURM_INSTALL:-}" = 1 ]; then
      install
    else
      log "Slurm, munge or MariaDB is not installed: run 'slurm/cluster.sh install' as root (or set SRT_SLURM_INSTALL=1)"
      exit 1
    fi
  fi
  mkdir -p "$DIR"
  start_munge
  start_mariadb
  write_configs
  alive slurmdbd || slurmdbd
  wait_for 30 sacctmgr -n list cluster || { log "slurmdbd did not answer; see $DIR/slurmdbd.log"; exit 1; }
  sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -i add account srt Cluster="$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -i add user "$(id -un)" Account=srt Cluster="$CLUSTER" >/dev/null 2>&1 || true
  alive slurmctld || slurmctld
  wait_for 30 scontrol ping || { log "slurmctld did not start; see $DIR/slurmctld.log"; exit 1; }
  alive slurmd || slurmd
  wait_for 60 node_ready || { log "node did not become idle; see $DIR/slurmd.log"; exit 1; }
  log "cluster $CLUSTER up: $(sinfo -h -o '%P %D %T %c CPUs') (SLURM_CONF=$SLURM_CONF)"
}

stop() {
  local name
  for name in slurmd slurmctld slurmdbd; do
    if alive "$name"; then kill "$(cat "$DIR/$name.pid")"; fi
  done
  for name in slurmd slurmctld slurmdbd; do
    for _ in $(seq 1 40); do alive "$name" || break; sleep 0.25; done
  done
  if alive mysqld; then mysqladmin --no-defaults --socket="$DB_SOCKET" -u root shutdown >/dev/null 2>&1 || true; fi
  if alive munged; then kill "$(cat "$DIR/munged.pid")"; fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) node_ready ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: slurm/cluster.sh install|start|stop|status|env" >&2; exit 2 ;;
esac
