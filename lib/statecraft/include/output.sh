# shellcheck shell=bash
# Output helpers for state scripts: quote, verbose, quiet, cmd, get_random.

# quote ARGS...: the arguments as one shell-quoted line, for display.
quote() {
    local out="" arg
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then out+="$arg "; else out+="${arg@Q} "; fi
    done
    printf '%s' "${out% }"
}

# verbose [MSG...]: print to stderr with -v; without arguments, filter stdin the same way.
verbose() {
    if [ $# -gt 0 ]; then
        [ "${VERBOSE:-false}" != "true" ] || printf '%s\n' "$*" >&2
    elif [ "${VERBOSE:-false}" == "true" ]; then
        cat >&2
    else
        cat > /dev/null
    fi
}

# quiet [MSG...]: print to stdout unless -q; without arguments, filter stdin the same way.
quiet() {
    if [ $# -gt 0 ]; then
        [ "${QUIET:-false}" == "true" ] || printf '%s\n' "$*"
    elif [ "${QUIET:-false}" != "true" ]; then
        cat
    else
        cat > /dev/null
    fi
}

# cmd CMD [ARG...]: trace the command with -v, then run it.
cmd() {
    verbose "+ $(quote "$@")"
    "$@"
}

# get_random N: N random alphanumeric characters.
get_random() {
    local length="${1:-10}" out=""
    while [ "${#out}" -lt "$length" ]; do
        out+="$(LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c "$length")"
    done
    printf '%s' "${out:0:$length}"
}

# check_path FILE INFO FLAGS...: test FILE; on failure print "INFO 'FILE': reason" to stderr, return 1.
# Flags (groupable, e.g. -edrx): e exists, f file, d directory, h symlink, r readable, w writable,
# x executable, s non-empty; "+" instead of "-" negates e, f, d, h and s.
check_path() {
    local file="$1" info="$2" group sign flag i
    shift 2
    for group in "$@"; do
        sign="${group:0:1}"
        if [ "$sign" != "-" ] && [ "$sign" != "+" ]; then
            echo "check_path: invalid flags ${group@Q}" >&2
            return 2
        fi
        for ((i = 1; i < ${#group}; i++)); do
            flag="${group:i:1}"
            if [ "$sign" == "-" ]; then
                case "$flag" in
                    e) [ -e "$file" ] || [ -h "$file" ] || { echo "$info ${file@Q}: No such file or directory" >&2; return 1; } ;;
                    f) [ -f "$file" ] || { echo "$info ${file@Q}: Not a file" >&2; return 1; } ;;
                    d) [ -d "$file" ] || { echo "$info ${file@Q}: Not a directory" >&2; return 1; } ;;
                    h) [ -h "$file" ] || { echo "$info ${file@Q}: Not a symbolic link" >&2; return 1; } ;;
                    r) [ -r "$file" ] || { echo "$info ${file@Q}: Permission denied (not readable)" >&2; return 1; } ;;
                    w) [ -w "$file" ] || { echo "$info ${file@Q}: Permission denied (not writable)" >&2; return 1; } ;;
                    x) [ -x "$file" ] || { echo "$info ${file@Q}: Permission denied (not executable)" >&2; return 1; } ;;
                    s) [ -s "$file" ] || { echo "$info ${file@Q}: File is empty" >&2; return 1; } ;;
                    *) echo "check_path: invalid flag ${flag@Q}" >&2; return 2 ;;
                esac
            else
                case "$flag" in
                    e) { [ ! -e "$file" ] && [ ! -h "$file" ]; } || { echo "$info ${file@Q}: File exists" >&2; return 1; } ;;
                    f) [ ! -f "$file" ] || { echo "$info ${file@Q}: Is a file" >&2; return 1; } ;;
                    d) [ ! -d "$file" ] || { echo "$info ${file@Q}: Is a directory" >&2; return 1; } ;;
                    h) [ ! -h "$file" ] || { echo "$info ${file@Q}: Is a symbolic link" >&2; return 1; } ;;
                    s) [ ! -s "$file" ] || { echo "$info ${file@Q}: File is not empty" >&2; return 1; } ;;
                    *) echo "check_path: invalid flag ${flag@Q}" >&2; return 2 ;;
                esac
            fi
        done
    done
    return 0
}
