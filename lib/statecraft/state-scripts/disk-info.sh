# shellcheck shell=bash
# disk-info.sh: a JSON array of {partition, filesystem, mountpoint} for every mount point among the
# run's paths, written to the state script's path.

_disk_info() {
    local ID PATH_
    for ID in "${PATHS[@]}"; do
        PATH_="$(unescape_source_path "$ID")" || continue
        is_mountpoint "$PATH_" || continue
        jq -n --arg partition "$(mountinfo "$PATH_" source)" --arg filesystem "$(mountinfo "$PATH_" fstype)" \
            --arg mountpoint "$PATH_" '{$partition, $filesystem, $mountpoint}'
    done | jq -s .
}

setup_path() {
    write_state_file "$1" "disk information" _disk_info
}
