# shellcheck shell=bash
# Btrfs helpers for state scripts and for crash recovery.

# btrfs_devices MOUNTPOINT: every device of the filesystem mounted there, one per line.
btrfs_devices() {
    btrfs filesystem show "$1" | sed -n 's/^[[:space:]]*devid .* path \(.*\)$/\1/p'
}

# btrfs_uuid MOUNTPOINT
btrfs_uuid() {
    btrfs filesystem show "$1" | sed -n 's/.*uuid: \([0-9a-f-]*\).*/\1/p' | head -n 1
}

# btrfs_mount_toplevel UUID DIR DEVICE...: mount the top-level subvolume (subvol=/) of a filesystem
# at DIR, naming every device. Does nothing if DIR is already a mount point.
btrfs_mount_toplevel() {
    local uuid="$1" dir="$2" options="subvol=/" device
    shift 2
    ! is_mountpoint "$dir" || return 0
    for device in "$@"; do options+=",device=$device"; done
    mkdir -p "$dir" && cmd mount -t btrfs -o "$options" "$1" "$dir"
}

# btrfs_delete_snapshot UUID RELPATH: delete a snapshot subvolume given by its path on the top-level
# subvolume. Works in the run (top-level still mounted) and in recovery (mounts it privately).
# Returns $STATECRAFT_WAIT_STATUS when no device of the filesystem is attached (a disk unplugged):
# recovery keeps the journal and tries again later.
btrfs_delete_snapshot() {
    local uuid="$1" rel="$2" mounted_here=""
    local top="${RUN_DIR:-/tmp}/btrfs/$uuid"
    if ! is_mountpoint "$top"; then
        local -a devices
        mapfile -t devices < <(blkid -c /dev/null -t "UUID=$uuid" -o device | sort)
        if [ ${#devices[@]} -eq 0 ]; then
            echo "statecraft: filesystem $uuid is not attached" >&2
            return "$STATECRAFT_WAIT_STATUS"
        fi
        top="$(mktemp -d)"
        btrfs_mount_toplevel "$uuid" "$top" "${devices[@]}" || { rmdir "$top"; return 1; }
        mounted_here="$top"
    fi
    local status=0
    if btrfs subvolume show "$top$rel" > /dev/null 2>&1; then
        cmd btrfs subvolume delete "$top$rel" | verbose || status=1
    fi
    if [ -n "$mounted_here" ]; then umount "$mounted_here" && rmdir "$mounted_here"; fi
    return "$status"
}
