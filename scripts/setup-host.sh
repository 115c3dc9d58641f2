#!/usr/bin/env bash
# Prepare this host for stowage's integration tests: the system tools they drive for real, and a
# running Docker engine and a single-node Ceph cluster with S3 (scripts/setup-ceph.sh). Idempotent;
# a quick no-op when everything is already there.
# Debian/Ubuntu as root installs what is missing; anywhere else it lists what is missing and fails.
set -euo pipefail

# command -> Debian package that provides it
declare -A NEEDED=(
  [dockerd]=docker.io
  [docker]=docker.io
  [restic]=restic
  [btrfs]=btrfs-progs
  [mkfs.btrfs]=btrfs-progs
  [busybox]=busybox-static
  [xz]=xz-utils
  [jq]=jq
  [losetup]=mount
  [blkid]=util-linux
  [unshare]=util-linux
  [flock]=util-linux
  [xargs]=findutils
  [truncate]=coreutils
  [fallocate]=util-linux
  [mount]=mount
  [tar]=tar
  [systemd-escape]=systemd
  [openssl]=openssl
  [diff]=diffutils
  [pgrep]=procps
  [make]=make
  [findmnt]=mount
  [systemd-socket-activate]=systemd
  [lvs]=lvm2
  [htpasswd]=apache2-utils
  [script]=bsdutils
  [python3]=python3
  [getfattr]=attr
  [setfattr]=attr
  [setfacl]=acl
  [find]=findutils
  [debootstrap]=debootstrap
  [strip]=binutils
  [ip]=iproute2
  [ss]=iproute2
  [curl]=curl
  # the extra Docker engines of test/support/engines.ts (one reached over ssh)
  [nsenter]=util-linux
  [sshd]=openssh-server
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  # the single-node Ceph cluster (S3 through radosgw) of scripts/setup-ceph.sh
  [ceph-mon]=ceph-mon
  [ceph-osd]=ceph-osd
  [radosgw]=radosgw
  [radosgw-admin]=ceph-common
  [ceph]=ceph-common
  [monmaptool]=ceph-base
  # the arm64 executable, built and tested under qemu-user (test/packaging/arm64.integration.test.ts)
  [qemu-aarch64-static]=qemu-user-static
  [aarch64-linux-gnu-strip]=binutils-aarch64-linux-gnu
)

# file -> Debian package (of another architecture) that provides it
declare -A NEEDED_FILES=(
  [/lib/ld-linux-aarch64.so.1]=libc6:arm64
  [/usr/lib/aarch64-linux-gnu/libstdc++.so.6]=libstdc++6:arm64
)

missing_packages() {
  local command
  for command in "${!NEEDED[@]}"; do
    command -v "$command" >/dev/null 2>&1 || echo "${NEEDED[$command]}"
  done | sort -u
  local file
  for file in "${!NEEDED_FILES[@]}"; do
    [ -e "$file" ] || echo "${NEEDED_FILES[$file]}"
  done
  # The test image is built from the static busybox; a dynamic one would not run in an empty rootfs.
  if [ -x /bin/busybox ] && ! file_is_static /bin/busybox; then echo busybox-static; fi
}

file_is_static() {
  ! grep -q 'ld-linux' <(head -c 4096 "$1" | tr -c '[:print:]' '\n') 2>/dev/null
}

docker_ready() {
  [ -S /var/run/docker.sock ] && timeout 10 docker info >/dev/null 2>&1
}

start_dockerd() {
  docker_ready && return 0
  # A socket can outlive its dockerd (the machine's processes were ended, its /run was kept):
  # only a running dockerd is worth waiting for, a stale socket is removed and a new one started.
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    if [ -e /var/run/docker.sock ]; then
      echo "setup-host: removing the stale /var/run/docker.sock (no dockerd is running)"
      rm -f /var/run/docker.sock
    fi
    echo "setup-host: starting dockerd (log: /var/log/stowage-dockerd.log)"
    nohup dockerd >/var/log/stowage-dockerd.log 2>&1 &
  fi
  local waited=0
  until docker_ready; do
    sleep 1
    waited=$((waited + 1))
    if [ "$waited" -ge 60 ]; then
      echo "setup-host: dockerd did not answer 'docker info' within 60 s; see /var/log/stowage-dockerd.log" >&2
      tail -n 20 /var/log/stowage-dockerd.log >&2 || true
      exit 1
    fi
  done
}

mapfile -t packages < <(missing_packages)
if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-host: missing packages: ${packages[*]}" >&2
    echo "setup-host: install them (Debian/Ubuntu: apt-get install ${packages[*]}) and run this again as root" >&2
    exit 1
  fi
  echo "setup-host: installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if printf '%s\n' "${packages[@]}" | grep -q ':arm64$' && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host: the integration tests need root (loop devices, mounts, Docker)" >&2
  exit 1
fi
modprobe btrfs 2>/dev/null || true
modprobe overlay 2>/dev/null || true
grep -qw btrfs /proc/filesystems || { echo "setup-host: this kernel has no btrfs support" >&2; exit 1; }
start_dockerd
bash "$(dirname "$0")/setup-ceph.sh"
