# shellcheck shell=bash
# external-drive.sh: wait (up to STATECRAFT_DRIVE_TIMEOUT seconds, default 60) until the drive
# labelled STATECRAFT_DRIVE_LABEL is mounted, then bind-mount the path on it read-only. Use a
# "TARGET+SOURCE" name where SOURCE is the path on the mounted drive.

setup_path() {
    local ID="$1" SOURCE TARGET LABEL="${STATECRAFT_DRIVE_LABEL:-}" WAITED=0 DEVICE
    resolve_state_paths "$ID" || return 1
    [ -n "$LABEL" ] || { echo "Invalid path ${ID@Q}: set STATECRAFT_DRIVE_LABEL to the drive's label" >&2; return 1; }
    # /dev/disk/by-label needs udev; blkid finds the label without it.
    until DEVICE="$(readlink -f "/dev/disk/by-label/$LABEL" 2> /dev/null || blkid -c /dev/null -L "$LABEL" 2> /dev/null)" &&
        [ -b "$DEVICE" ] && findmnt --source "$DEVICE" > /dev/null 2>&1; do
        [ "$WAITED" -lt "${STATECRAFT_DRIVE_TIMEOUT:-60}" ] || { echo "Drive ${LABEL@Q} was not mounted in time" >&2; return 1; }
        sleep 1
        WAITED=$((WAITED + 1))
    done
    check_path "$SOURCE" "Invalid path ${ID@Q}: Path on drive ${LABEL@Q}" -er || return 1
    quiet "Bind mount ${SOURCE@Q} from drive ${LABEL@Q} read-only at ${TARGET@Q}"
    mkmountpoint "$TARGET_DIR" "$ID" || return 1
    trap_exit umount "$TARGET_DIR$TARGET"
    cmd mount --bind "$SOURCE" "$TARGET_DIR$TARGET" || return 1
    cmd mount -o remount,bind,ro "$TARGET_DIR$TARGET"
}
