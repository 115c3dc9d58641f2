# shellcheck shell=bash
# Path <-> name escaping, identical to `systemd-escape --path` (and to `statecraft -e/-u`).

# escape_path PATH: the escaped name of an absolute path.
escape_path() {
    local path="$1"
    case "$path" in /*) ;; *) echo "escape_path: not an absolute path: ${path@Q}" >&2; return 1 ;; esac
    local -
    set -f
    local LC_ALL=C IFS=/ part out="" parts=()
    for part in $path; do
        [ -z "$part" ] || [ "$part" == "." ] || parts+=("$part")
        [ "$part" != ".." ] || { echo "escape_path: path contains '..': ${path@Q}" >&2; return 1; }
    done
    [ ${#parts[@]} -gt 0 ] || { printf '%s' "-"; return 0; }
    path="${parts[*]}"
    local i char
    for ((i = 0; i < ${#path}; i++)); do
        char="${path:i:1}"
        case "$char" in
            /) out+="-" ;;
            [A-Za-z0-9:_]) out+="$char" ;;
            .) if [ "$i" -eq 0 ]; then out+='\x2e'; else out+="."; fi ;;
            *) out+="$(printf '\\x%02x' "'$char")" ;;
        esac
    done
    printf '%s' "$out"
}

# unescape_path NAME: the path of a canonical name; fails for non-canonical names.
unescape_path() {
    local name="$1" path
    [ -n "$name" ] || { echo "unescape_path: empty name" >&2; return 1; }
    if [ "$name" == "-" ]; then printf '/'; return 0; fi
    local LC_ALL=C
    local rest="${name//-//}"
    [[ "$rest" != *'\x00'* ]] || { echo "unescape_path: ${name@Q} contains NUL" >&2; return 1; }
    # The trailing "x" keeps a decoded trailing newline from being stripped.
    path="/$(printf '%b' "$rest"; printf x)"
    path="${path%x}"
    if [ "$(escape_path "$path" 2>/dev/null)" != "$name" ]; then
        echo "unescape_path: ${name@Q} is not a canonical escaped path" >&2
        return 1
    fi
    printf '%s' "$path"
}

# unescape_target_path ID / unescape_source_path ID: for "TARGET+SOURCE" names; plain names are both.
unescape_target_path() { unescape_path "${1%%+*}"; }
unescape_source_path() {
    if [[ "$1" == *+* ]]; then unescape_path "${1#*+}"; else unescape_path "$1"; fi
}

# resolve_state_paths ID: set the caller's SOURCE and TARGET (declare them local first) from a plain
# or "TARGET+SOURCE" ID.
resolve_state_paths() {
    SOURCE="$(unescape_source_path "$1")" && TARGET="$(unescape_target_path "$1")"
}
