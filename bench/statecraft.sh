#!/usr/bin/env bash
# Benchmark: wall time of `statecraft -p DIR -- true` on seed 000's seven-path layout (bind /etc,
# btrfs root-subvolume /var, Snapper-flat /srv + /srv/containers/foo + /srv/containers/bar,
# fcos-release.json, podman-containers.json) on loop-device btrfs. Median of 5 after a warm-up,
# split into the time spent in external tools (mount, umount, btrfs, mkdir, ..., timed by shims put
# first in PATH, so statecraft itself carries no timing code) and our own overhead (node, bash,
# the runner; it includes the shims' own bash start-up, about 1 ms per call). Run as root after
# `npm run build`.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATECRAFT=("$(command -v node)" "$ROOT/dist/cli/statecraft.js")
RUNS="${RUNS:-5}"
WORK="$(mktemp -d /tmp/stowage-bench-sc.XXXXXX)"
LOOPS=()
cleanup() {
    umount -R "$WORK/srv" 2> /dev/null || true
    umount "$WORK/var" 2> /dev/null || true
    for loop in "${LOOPS[@]}"; do losetup -d "$loop" 2> /dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

loopfs() { # loopfs NAME -> prints device
    truncate -s 256M "$WORK/$1.img"
    local dev
    dev="$(losetup --find --show "$WORK/$1.img")"
    mkfs.btrfs -q -f "$dev" > /dev/null
    echo "$dev"
}
VAR_DEV="$(loopfs var)"; LOOPS+=("$VAR_DEV")
SRV_DEV="$(loopfs srv)"; LOOPS+=("$SRV_DEV")
mkdir -p "$WORK/etc" "$WORK/var" "$WORK/srv" "$WORK/top" "$WORK/paths.d" "$WORK/bin" "$WORK/state"
echo "host" > "$WORK/etc/hostname"
mount "$VAR_DEV" "$WORK/var"
btrfs subvolume create "$WORK/var/.snapshots" > /dev/null
head -c 50M /dev/urandom > "$WORK/var/data"
mount "$SRV_DEV" "$WORK/top"
for sub in @ @foo @bar; do btrfs subvolume create "$WORK/top/$sub" > /dev/null; done
mkdir -p "$WORK/top/@/containers/foo" "$WORK/top/@/containers/bar"
umount "$WORK/top"
mount -o subvol=/@ "$SRV_DEV" "$WORK/srv"
mount -o subvol=/@foo "$SRV_DEV" "$WORK/srv/containers/foo"
mount -o subvol=/@bar "$SRV_DEV" "$WORK/srv/containers/bar"

printf '#!/bin/sh\necho "{\\"deployments\\":[]}"\n' > "$WORK/bin/rpm-ostree"
printf '#!/bin/sh\necho "[]"\n' > "$WORK/bin/podman"
printf '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done; shift; exec "$@"\n' > "$WORK/bin/sudo"
chmod +x "$WORK/bin/"*
# A timing shim per external tool: logs "start end tool" to $STATECRAFT_BENCH_LOG, then runs it.
mkdir -p "$WORK/timed"
for tool in mount umount btrfs mkdir rmdir findmnt lsblk blkid sync chown chmod; do
    real="$(command -v "$tool")" || continue
    printf '#!/bin/bash\ns=$EPOCHREALTIME; %q "$@"; st=$?\n[ -z "${STATECRAFT_BENCH_LOG:-}" ] || printf "%%s %%s %%s\\n" "$s" "$EPOCHREALTIME" %q >> "$STATECRAFT_BENCH_LOG"\nexit $st\n' "$real" "$tool" > "$WORK/timed/$tool"
done
chmod +x "$WORK/timed/"*
export PATH="$WORK/timed:$WORK/bin:$PATH" STATECRAFT_STATE_DIR="$WORK/state"
S="$ROOT/lib/statecraft/state-scripts"
link() { ln -s "$S/$1" "$WORK/paths.d/$("${STATECRAFT[@]}" -e "$2").state.sh"; }
link bind.sh "$WORK/etc"
link btrfs.sh "$WORK/var"
link btrfs.sh "$WORK/srv"
link btrfs.sh "$WORK/srv/containers/foo"
link btrfs.sh "$WORK/srv/containers/bar"
link fcos-release.sh /fcos-release.json
link podman-containers.sh /podman-containers.json

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
"${STATECRAFT[@]}" -q -p "$WORK/paths.d" -- true # warm-up
walls=(); tools=(); startup=()
for ((i = 0; i < RUNS; i++)); do
    log="$WORK/timing-$i"
    start=$(now)
    touch "$log"
    STATECRAFT_BENCH_LOG="$log" "${STATECRAFT[@]}" -q -p "$WORK/paths.d" -- true
    end=$(now)
    walls+=("$(echo "$end - $start" | bc)")
    tools+=("$(awk '{s += $2 - $1} END {printf "%.4f", s}' "$log")")
    s=$(now); "${STATECRAFT[@]}" --version > /dev/null; e=$(now)
    startup+=("$(echo "$e - $s" | bc)")
done
wall=$(printf '%s\n' "${walls[@]}" | median)
tool=$(printf '%s\n' "${tools[@]}" | median)
node_start=$(printf '%s\n' "${startup[@]}" | median)
echo "statecraft -p DIR -- true, 7 paths (4 btrfs + bind + 2 generated files), median of $RUNS:"
printf '  wall time          %.3f s\n' "$wall"
printf '  external tools     %.3f s (mount, umount, btrfs snapshot/delete, mkdir, ...)\n' "$tool"
printf '  our overhead       %.3f s (of which node start-up ~%.3f s)\n' "$(echo "$wall - $tool" | bc)" "$node_start"
left="$(btrfs subvolume list -a "$WORK/var" | grep -c 'snap-' || true)"
echo "  snapshots left on /var: $left"
