# shellcheck shell=bash
# btrfs.sh: a read-only btrfs snapshot of a mounted subvolume, mounted at the same path in the
# state. Layouts: the top-level subvolume "/" (snapshot at /.snapshots/snap-RUN_ID, ".snapshots"
# must exist) and Snapper's flat layout "@name" (snapshot at /@name_snap-RUN_ID). The top-level
# subvolume is mounted once per filesystem under the run dir. Cleanup is journaled before each
# step, so even after a crash `statecraft --recover` deletes the snapshot.

setup_path() {
    local ID="$1" SOURCE TARGET
    resolve_state_paths "$ID" || return 1

    is_mountpoint "$SOURCE" || { echo "Invalid path ${ID@Q}: ${SOURCE@Q} is not a mount point" >&2; return 1; }
    local FSTYPE SUBVOL UUID
    FSTYPE="$(mountinfo "$SOURCE" fstype)"
    [ "$FSTYPE" == "btrfs" ] || { echo "Invalid path ${ID@Q}: ${SOURCE@Q} is not btrfs but ${FSTYPE@Q}" >&2; return 1; }
    SUBVOL="$(mountinfo "$SOURCE" fsroot)"
    UUID="$(btrfs_uuid "$SOURCE")"
    [ -n "$UUID" ] || { echo "Invalid path ${ID@Q}: cannot read the filesystem UUID of ${SOURCE@Q}" >&2; return 1; }
    local -a DEVICES
    mapfile -t DEVICES < <(btrfs_devices "$SOURCE")
    [ ${#DEVICES[@]} -gt 0 ] || { echo "Invalid path ${ID@Q}: no devices found for ${SOURCE@Q}" >&2; return 1; }

    local TOP="$RUN_DIR/btrfs/$UUID"
    if ! is_mountpoint "$TOP"; then
        trap_exit_eval "umount $(quote "$TOP") 2>/dev/null; rmdir $(quote "$TOP") $(quote "$RUN_DIR/btrfs") 2>/dev/null; true"
        btrfs_mount_toplevel "$UUID" "$TOP" "${DEVICES[@]}" || return 1
    fi

    local SNAPSHOT
    if [ "$SUBVOL" == "/" ]; then
        check_path "$TOP/.snapshots" "Invalid path ${ID@Q}: Snapshot directory" -ed || return 1
        SNAPSHOT="/.snapshots/snap-$RUN_ID"
    elif [[ "$SUBVOL" =~ ^/@[^/]*$ ]]; then
        SNAPSHOT="${SUBVOL}_snap-$RUN_ID"
    else
        echo "Invalid path ${ID@Q}: unsupported subvolume layout ${SUBVOL@Q} (expected '/' or a top-level '@name')" >&2
        return 1
    fi

    quiet "Snapshot ${SOURCE@Q} (subvolume ${SUBVOL@Q}) read-only at ${TARGET@Q}"
    trap_exit btrfs_delete_snapshot "$UUID" "$SNAPSHOT"
    cmd btrfs subvolume snapshot -r "$TOP$SUBVOL" "$TOP$SNAPSHOT" | verbose
    [ "${PIPESTATUS[0]}" -eq 0 ] || return 1

    mkmountpoint "$TARGET_DIR" "$ID" || return 1
    local OPTIONS="ro,subvol=$SNAPSHOT" DEVICE
    for DEVICE in "${DEVICES[@]}"; do OPTIONS+=",device=$DEVICE"; done
    trap_exit umount "$TARGET_DIR$TARGET"
    cmd mount -t btrfs -o "$OPTIONS" "${DEVICES[0]}" "$TARGET_DIR$TARGET"
}
