#!/usr/bin/env bash
# One statecraft run, inside its private mount and PID namespaces (started by the statecraft command
# as `unshare --mount --pid --fork --kill-child --propagation slave bash runner.sh ID FILE
# [ID FILE]... -- COMMAND [ARG]...`). As PID 1 of its namespace, its death takes every process of
# the run with it, and so every mount: nothing can keep the namespace alive after a crash.
# Sets up every path with its state script, runs COMMAND in the assembled target directory, and
# always replays the cleanup journal. Environment: LIB_DIR RUN_ID RUN_DIR TARGET_DIR SCRIPTS_DIR
# QUIET VERBOSE SELINUX STATECRAFT_JOURNAL STATECRAFT_TARGET_TMPFS STATECRAFT_GRACE. fd 3 is the
# lifeline to the statecraft command; fd 4 holds the paths dir's lock (kept here, in PID 1 of the
# run, until the run is gone; never passed on to the scripts or the command).
set -u
# shellcheck source=include/statecraft.sh
source "$LIB_DIR/include/statecraft.sh"

PATHS=()
FILES=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    PATHS+=("$1")
    FILES+=("$2")
    shift 2
done
shift
COMMAND=("$@")
APP_NAME=statecraft
export APP_NAME VERSION LIB_DIR SELINUX QUIET VERBOSE SCRIPTS_DIR TARGET_DIR RUN_DIR RUN_ID STATECRAFT_JOURNAL

# Our PID as the host sees it (/proc is the host's): a liveness record in the journal, so
# `statecraft --recover` leaves a live run alone, and on fd 3 for the statecraft command, which
# signals us directly.
read -r -a _stat < /proc/self/stat
HOST_PID="${_stat[0]}"
printf 'P %s %s\n' "$HOST_PID" "$(cut -d' ' -f22 "/proc/$HOST_PID/stat")" >> "$STATECRAFT_JOURNAL"
{ printf '%s\n' "$HOST_PID" >&3; } 2> /dev/null

SIGNAL_STATUS=""
KILLER=""
CHILD=""
CHILD_GROUP=""
on_signal() {
    SIGNAL_STATUS=$((128 + $2))
    [ -n "$CHILD" ] || return 0
    if [ -n "$CHILD_GROUP" ]; then kill -s "$1" -- "-$CHILD" 2> /dev/null; else kill -s "$1" "$CHILD" 2> /dev/null; fi
    # Bounded wait: the child gets STATECRAFT_GRACE seconds, then SIGKILL. (From "/", so this
    # helper never keeps the target directory busy.)
    [ -n "$KILLER" ] || {
        (cd / && sleep "${STATECRAFT_GRACE:-30}"; kill -KILL -- "-$CHILD" 2> /dev/null; kill -KILL "$CHILD" 2> /dev/null) 3<&- 4<&- &
        KILLER=$!
    }
}
trap 'on_signal INT 2' INT
trap 'on_signal HUP 1' HUP
trap 'on_signal TERM 15' TERM

# fd 3 is a pipe from the statecraft command: end of file means it died; tear down then.
WATCHDOG=""
if { true <&3; } 2> /dev/null; then
    (while read -r -u 3 _; do :; done; kill -TERM $$ 2> /dev/null) 4<&- &
    WATCHDOG=$!
fi

# wait_child: wait for $CHILD to end, across interruptions by trapped signals; sets CHILD_STATUS.
wait_child() {
    while :; do
        wait "$CHILD"
        CHILD_STATUS=$?
        kill -0 "$CHILD" 2> /dev/null || break
    done
    CHILD=""
    CHILD_GROUP=""
}

finish() {
    local status="$1"
    [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2> /dev/null
    [ -z "$KILLER" ] || kill "$KILLER" 2> /dev/null
    cd / || true
    if journal_replay "$STATECRAFT_JOURNAL"; then
        rm -f "$STATECRAFT_JOURNAL"
    else
        echo "statecraft: some cleanup actions failed; the journal is kept for 'statecraft --recover': $STATECRAFT_JOURNAL" >&2
    fi
    exit "$status"
}

if [ "${STATECRAFT_TARGET_TMPFS:-false}" == "true" ]; then
    trap_exit umount "$TARGET_DIR"
    cmd mount -t tmpfs -o mode=0755 statecraft "$TARGET_DIR" || finish 1
fi

for i in "${!PATHS[@]}"; do
    [ -z "$SIGNAL_STATUS" ] || finish "$SIGNAL_STATUS"
    id="${PATHS[i]}"
    file="${FILES[i]}"
    verbose "statecraft: setting up $(quote "$id") with $(quote "$file")"
    (
        # shellcheck source=/dev/null
        source "$file" || exit $?
        if ! declare -F setup_path > /dev/null; then
            echo "statecraft: state script ${file@Q} defines no setup_path function" >&2
            exit 1
        fi
        setup_path "$id"
    ) 3<&- 4<&- < /dev/null &
    CHILD=$!
    wait_child
    if [ "$CHILD_STATUS" -ne 0 ]; then
        [ -n "$SIGNAL_STATUS" ] && finish "$SIGNAL_STATUS"
        echo "statecraft: setting up $(quote "$id") failed with status $CHILD_STATUS" >&2
        finish "$CHILD_STATUS"
    fi
done
[ -z "$SIGNAL_STATUS" ] || finish "$SIGNAL_STATUS"

cd "$TARGET_DIR" || finish 1
if ! type -t -- "${COMMAND[0]}" > /dev/null; then
    echo "statecraft: ${COMMAND[0]}: command not found" >&2
    finish 127
fi
# The command gets its own process group, so a signal reaches everything it started.
set -m
LC_ALL=C.UTF-8 "${COMMAND[@]}" 3<&- 4<&- &
CHILD=$!
CHILD_GROUP=yes
set +m
wait_child
[ -z "$SIGNAL_STATUS" ] || finish "$SIGNAL_STATUS"
finish "$CHILD_STATUS"
