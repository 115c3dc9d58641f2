# shellcheck shell=bash
# Generated status files.

# write_state_file ID DESCRIPTION COMMAND [ARG...]: write COMMAND's output to the ID's target path in
# the state (which must not exist yet), creating missing parent directories, and journal its removal.
write_state_file() {
    local id="$1" description="$2" filename
    shift 2
    filename="$(unescape_target_path "$id")" || return 1
    check_path "$TARGET_DIR$filename" "Invalid path ${id@Q}: $description file" +e || return 1
    quiet "Write $description to ${filename@Q}"
    mkmountpoint "$TARGET_DIR" "$id" "$(dirname "$filename")" || return 1
    trap_exit rm -f "$TARGET_DIR$filename"
    "$@" > "$TARGET_DIR$filename"
}
