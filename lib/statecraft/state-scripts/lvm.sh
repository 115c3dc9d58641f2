# shellcheck shell=bash
# lvm.sh: a read-only LVM snapshot of the logical volume mounted at the path, mounted at the same
# path in the state. The COW area defaults to 5%ORIGIN; set STATECRAFT_LVM_EXTENTS to change it.

setup_path() {
    local ID="$1" SOURCE TARGET
    resolve_state_paths "$ID" || return 1
    is_mountpoint "$SOURCE" || { echo "Invalid path ${ID@Q}: ${SOURCE@Q} is not a mount point" >&2; return 1; }
    local DEVICE FSTYPE VG LV SNAP OPTIONS="ro"
    DEVICE="$(mountinfo "$SOURCE" source)"
    FSTYPE="$(mountinfo "$SOURCE" fstype)"
    read -r VG LV < <(lvs --noheadings -o vg_name,lv_name "$DEVICE" 2> /dev/null) ||
        { echo "Invalid path ${ID@Q}: ${DEVICE@Q} is not an LVM logical volume" >&2; return 1; }
    SNAP="$LV+snap_$RUN_ID"
    [ "$FSTYPE" != "xfs" ] || OPTIONS+=",nouuid"

    quiet "Snapshot LVM volume $VG/$LV read-only at ${TARGET@Q}"
    trap_exit lvremove --force "$VG/$SNAP"
    cmd lvcreate --snapshot --permission r --extents "${STATECRAFT_LVM_EXTENTS:-5%ORIGIN}" --name "$SNAP" "$VG/$LV" | verbose
    [ "${PIPESTATUS[0]}" -eq 0 ] || return 1
    mkmountpoint "$TARGET_DIR" "$ID" || return 1
    trap_exit umount "$TARGET_DIR$TARGET"
    cmd mount -t "$FSTYPE" -o "$OPTIONS" "/dev/$VG/$SNAP" "$TARGET_DIR$TARGET"
}
