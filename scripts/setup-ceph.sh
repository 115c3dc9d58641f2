#!/usr/bin/env bash
# A single-node Ceph cluster with a RADOS Gateway (S3) for the integration tests: one monitor, one
# bluestore OSD on a sparse file, one radosgw on 127.0.0.1, from Debian's own packages. No systemd
# units, no cephadm, no mgr; nothing in /etc/ceph or /var/lib/ceph: everything lives in $DIR.
# Idempotent, like dockerd in setup-host.sh: a running cluster is left alone, a stopped one (the
# machine restarted) is started again from its data, a broken one is made anew.
#
#   bash scripts/setup-ceph.sh          # up (default)
#   bash scripts/setup-ceph.sh down     # stop the daemons it started (by PID) and keep the data
#   bash scripts/setup-ceph.sh purge    # stop them and delete the data
#
# Afterwards $DIR/s3.env holds S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
# and CEPH_CONF (read by test/support/s3.ts). Ports: radosgw 17480, mon 13300 (v2) / 16789 (v1),
# OSD 16800-16900; a port held by anything else is an error, never taken over.
set -euo pipefail

DIR=${STOWAGE_CEPH_DIR:-/var/lib/stowage-ceph}
CONF=$DIR/ceph.conf
RUN=$DIR/run
RGW_PORT=17480
MON_V2=13300
MON_V1=16789
OSD_PORTS=(16800 16900)
ACCESS_KEY=STOWAGETESTACCESS000
SECRET_KEY=stowage-test-secret-key-0000000000000000
export CEPH_CONF=$CONF

say() { echo "setup-ceph: $*"; }
fail() {
  echo "setup-ceph: $*" >&2
  for log in "$DIR"/log/*.log; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 5 "$log" >&2; }; done
  exit 1
}

# Every ceph call gets a deadline: without a mgr some commands wait forever.
ceph_() { timeout 20 ceph "$@"; }

s3_up() {
  [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/")" = 200 ]
}

# The PID recorded for a daemon, if that process is still the daemon (not a reused PID).
live_pid() {
  local name=$1 binary=$2 pid
  pid=$(awk -v n="$name" '$1 == n { print $2 }' "$RUN/pids" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$binary" && echo "$pid"
}

stop_daemons() {
  local signal=$1 name binary pid pids=()
  for entry in rgw.a:radosgw osd.0:ceph-osd mon.a:ceph-mon; do
    name=${entry%%:*} binary=${entry##*:}
    if pid=$(live_pid "$name" "$binary"); then
      kill "-$signal" "$pid" && pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  done
  return 0
}

port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

wait_until() { # SECONDS WHAT COMMAND...
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "$what did not come up in time"
    sleep 0.2
  done
}

# Start a daemon in the foreground of its own session, at low priority; its PID recorded.
start() {
  local name=$1
  shift
  sed -i "/^$name /d" "$RUN/pids" 2>/dev/null || true
  setsid nice -n 10 "$@" -f >"$DIR/log/$name.out" 2>&1 </dev/null &
  echo "$name $!" >>"$RUN/pids"
}

write_config() {
  cat >"$CONF" <<EOF
[global]
fsid = $1
mon host = [v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = ${OSD_PORTS[0]}
ms bind port max = ${OSD_PORTS[1]}
auth cluster required = none
auth service required = none
auth client required = none
run dir = $RUN
admin socket = $RUN/\$cluster-\$name.asok
pid file = $RUN/\$cluster-\$name.pid
log file = $DIR/log/\$cluster-\$name.log
crash dir = $DIR/crash
log to stderr = false
err to stderr = true
# One OSD: one copy, few placement groups (radosgw makes about eight pools), no autoscaler.
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
# The monitor stops below 5% free disk; warn only at 10%, not 30%.
mon data avail warn = 10

[mon]
mon data = $DIR/mon/\$cluster-\$id
# Pool creation proposes map changes one by one: do not batch them for a second each.
paxos propose interval = 0.1

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = bluestore
osd memory target = 1073741824
# bluestore creates \$osd_data/block itself, sparse (naming that path explicitly loops: ELOOP).
bluestore block create = true
bluestore block size = 8589934592
bdev aio poll ms = 20

[client.rgw.a]
# Without cephx, radosgw's default secure-only monitor connection never authenticates.
ms mon client mode = secure crc
auth client required = none
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw/\$cluster-\$id
rgw thread pool size = 128
# Space of deleted objects back after a minute, not two hours.
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
}

write_env() {
  cat >"$DIR/s3.env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
CEPH_CONF=$CONF
EOF
  chmod 0600 "$DIR/s3.env"
}

start_all() {
  start mon.a ceph-mon -i a
  wait_until 60 "the monitor" ceph_ mon stat
  start osd.0 ceph-osd -i 0
  wait_until 120 "the OSD" sh -c "timeout 5 ceph osd stat -f json | grep -q '\"num_up_osds\":1'"
  start rgw.a radosgw -n client.rgw.a
  wait_until 180 "radosgw on 127.0.0.1:$RGW_PORT" s3_up
  # radosgw writes no pid file in the foreground; setsid may have forked: take the listener's PID.
  local pid
  pid=$(ss -Hltnp "sport = :$RGW_PORT" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)
  [ -n "$pid" ] && sed -i "s/^rgw.a .*/rgw.a $pid/" "$RUN/pids"
  # The daemons' own pid files beat $! (setsid forks when it leads a process group).
  for name in mon.a osd.0; do
    pid=$(tr -d ' \n' <"$RUN/ceph-$name.pid" 2>/dev/null) || continue
    [ -n "$pid" ] && sed -i "s/^$name .*/$name $pid/" "$RUN/pids"
  done
  return 0
}

create() {
  for port in "$RGW_PORT" "$MON_V2" "$MON_V1"; do
    port_free "$port" || fail "port $port is in use by another program; not starting Ceph"
  done
  rm -rf "$DIR"
  mkdir -p "$DIR"/{mon,osd/ceph-0,log,crash,rgw/ceph-rgw.a} "$RUN"
  chmod 0700 "$DIR"
  : >"$RUN/pids"
  local fsid uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  write_config "$fsid"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]" "$DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mkfs-mon.log" 2>&1 || fail "ceph-mon --mkfs failed"
  start mon.a ceph-mon -i a
  wait_until 60 "the monitor" ceph_ mon stat
  uuid=$(cat /proc/sys/kernel/random/uuid)
  [ "$(ceph_ osd new "$uuid")" = 0 ] || fail "ceph osd new did not give id 0"
  ceph-osd -i 0 --mkfs --osd-uuid "$uuid" >"$DIR/log/mkfs-osd.log" 2>&1 || fail "ceph-osd --mkfs failed"
  stop_daemons TERM
  start_all
  timeout 60 radosgw-admin user create --uid=stowage-test --display-name="stowage tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user.json" 2>"$DIR/log/user.err" ||
    fail "radosgw-admin user create failed"
  write_env
}

case ${1:-up} in
  up) ;;
  down)
    stop_daemons TERM
    say "stopped (data kept in $DIR)"
    exit 0
    ;;
  purge)
    stop_daemons KILL
    rm -rf "$DIR"
    say "stopped and removed $DIR"
    exit 0
    ;;
  *) fail "usage: setup-ceph.sh [up|down|purge]" ;;
esac

for command in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool curl ss; do
  command -v "$command" >/dev/null || fail "$command is missing (setup-host.sh installs it)"
done
if [ -f "$DIR/s3.env" ] && s3_up; then exit 0; fi
started=$(date +%s.%N)
if [ -f "$DIR/s3.env" ] && [ -d "$DIR/osd/ceph-0" ]; then
  # Stopped (the machine restarted, or `down`): start it again from its data.
  say "starting the cluster in $DIR again"
  stop_daemons TERM
  : >"$RUN/pids"
  if (start_all); then
    say "S3 at http://127.0.0.1:$RGW_PORT ($(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
    exit 0
  fi
  say "it did not come back; making a new one"
  stop_daemons KILL
fi
say "making a single-node cluster in $DIR (log: $DIR/log)"
create
say "S3 at http://127.0.0.1:$RGW_PORT ($(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
