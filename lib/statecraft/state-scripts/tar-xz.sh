# shellcheck shell=bash
# tar-xz.sh: an xz-compressed tar archive of a live path, at "<path>.tar.xz" in the state.

setup_path() {
    local ID="$1" SOURCE TARGET
    resolve_state_paths "$ID" || return 1
    check_path "$SOURCE" "Invalid path ${ID@Q}: Archive source" -edr || return 1

    quiet "Archive ${SOURCE@Q} to ${TARGET@Q}.tar.xz"
    mkmountpoint "$TARGET_DIR" "$ID" "$(dirname "$TARGET")" || return 1
    trap_exit rm -f "$TARGET_DIR$TARGET.tar.xz"
    cmd tar -cJf "$TARGET_DIR$TARGET.tar.xz" -C "$SOURCE" .
}
