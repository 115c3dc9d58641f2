# shellcheck shell=bash
# disk-info.sh: a JSON array of {partition, filesystem, mountpoint} for every mount point among the
# run's paths, written to the state script's path.

_disk_info() {
    local ID PATH_ TARGET
    for ID in "${PATHS[@]}"; do
        PATH_="$(unescape_source_path "$ID")" || continue
        is_mountpoint "$PATH_" || continue
        jq -n --arg partition "$(mountinfo "$PATH_" source)" --arg filesystem "$(mountinfo "$PATH_" fstype)" \
            --arg mountpoint "$PATH_" '{$partition, $filesystem, $mountpoint}'
    done | jq -s .
}

setup_path() {
    local ID="$1" FILENAME
    FILENAME="$(unescape_target_path "$ID")" || return 1
    check_path "$TARGET_DIR$FILENAME" "Invalid path ${ID@Q}: Disk info file" +e || return 1
    quiet "Write disk information to ${FILENAME@Q}"
    mkmountpoint "$TARGET_DIR" "$ID" "$(dirname "$FILENAME")" || return 1
    trap_exit rm -f "$TARGET_DIR$FILENAME"
    _disk_info > "$TARGET_DIR$FILENAME"
}
