# shellcheck shell=bash
# bind.sh: make a path (directory or single file) available read-only at the same place in the
# state, or at another place with a "TARGET+SOURCE" name. Not recursive: mounts below the source
# need their own state scripts.

setup_path() {
    local ID="$1" SOURCE TARGET
    resolve_state_paths "$ID" || return 1
    check_path "$SOURCE" "Invalid path ${ID@Q}: Bind mount source" -er || return 1

    quiet "Bind mount ${SOURCE@Q} read-only at ${TARGET@Q}"
    if [ -d "$SOURCE" ]; then
        mkmountpoint "$TARGET_DIR" "$ID" || return 1
    else
        mkmountpoint "$TARGET_DIR" "$ID" "$(dirname "$TARGET")" || return 1
        trap_exit rm -f "$TARGET_DIR$TARGET"
        cmd touch "$TARGET_DIR$TARGET" || return 1
    fi
    trap_exit umount "$TARGET_DIR$TARGET"
    cmd mount --bind "$SOURCE" "$TARGET_DIR$TARGET" || return 1
    cmd mount -o remount,bind,ro "$TARGET_DIR$TARGET" || return 1
}
