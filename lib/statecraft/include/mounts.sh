# shellcheck shell=bash
# Mount table helpers: mountinfo, is_mountpoint, mkmountpoint.

# mountinfo MOUNT FIELD: a field of the topmost mount at MOUNT from /proc/self/mountinfo, with the
# kernel's octal escapes (\040 for a space, ...) decoded. FIELD: target maj:min fsroot fstype source options.
mountinfo() {
    local mount="$1" field="$2" line found="" fields sep i wanted
    local -a parts
    # Compare in the kernel's escaped form: backslash, space, tab and newline as octal.
    wanted="${mount//\\/\\134}"
    wanted="${wanted// /\\040}"
    wanted="${wanted//$'\t'/\\011}"
    wanted="${wanted//$'\n'/\\012}"
    while IFS= read -r line; do
        read -r -a parts <<< "$line"
        [ "${parts[4]}" == "$wanted" ] && found="$line"
    done < /proc/self/mountinfo
    [ -n "$found" ] || return 1
    read -r -a parts <<< "$found"
    for ((i = 6; i < ${#parts[@]}; i++)); do [ "${parts[i]}" != "-" ] || { sep=$i; break; }; done
    case "$field" in
        target) fields="${parts[4]}" ;;
        maj:min) fields="${parts[2]}" ;;
        fsroot) fields="${parts[3]}" ;;
        options) fields="${parts[5]}" ;;
        fstype) fields="${parts[sep + 1]}" ;;
        source) fields="${parts[sep + 2]}" ;;
        *) echo "mountinfo: unknown field ${field@Q}" >&2; return 2 ;;
    esac
    printf '%b\n' "${fields//\\/\\0}"
}

# is_mountpoint PATH: whether something is mounted exactly at PATH.
is_mountpoint() {
    mountinfo "$1" target > /dev/null
}

# mkmountpoint BASE ID [DIR]: create DIR (default: the ID's target path) under BASE, one missing
# component at a time, copying each component's mode, owner (and SELinux context) from the host
# path when it exists; registers an rmdir cleanup for every directory it creates.
mkmountpoint() {
    local base="$1" id="$2" dir="${3:-}"
    [ -n "$dir" ] || dir="$(unescape_target_path "$id")" || return 1
    local -
    set -f
    local IFS=/ part current="" host
    for part in $dir; do
        [ -n "$part" ] || continue
        current+="/$part"
        [ ! -d "$base$current" ] || continue
        trap_exit rmdir "$base$current"
        cmd mkdir "$base$current" || return 1
        host="$current"
        if [ -e "$host" ]; then
            chmod --reference="$host" "$base$current" 2> /dev/null || true
            chown --reference="$host" "$base$current" 2> /dev/null || true
            [ "${SELINUX:-false}" != "true" ] || chcon --reference="$host" "$base$current" 2> /dev/null || true
        fi
    done
}
