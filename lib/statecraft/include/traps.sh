# shellcheck shell=bash
# Cleanup actions, kept in an on-disk journal so they survive a crash: trap_exit, trap_exit_eval.
# Each entry is one line "E <base64 of shell text>", made durable before the caller goes on to
# create the thing it undoes. Entries run last-in first-out at the end of the run, or from
# `statecraft --recover` after a crash.

_journal_append() {
    [ -n "${STATECRAFT_JOURNAL:-}" ] || { echo "statecraft: no cleanup journal (not run by statecraft?)" >&2; return 1; }
    printf 'E %s\n' "$(printf '%s' "$1" | base64 -w0)" >> "$STATECRAFT_JOURNAL" || return 1
    sync "$STATECRAFT_JOURNAL" 2> /dev/null || true
}

# trap_exit CMD [ARG...]: run this command at the end of the run.
trap_exit() {
    local text
    printf -v text '%q ' "$@"
    _journal_append "$text"
}

# trap_exit_eval TEXT: run this shell text at the end of the run.
trap_exit_eval() {
    _journal_append "$1"
}

# An entry that fails with this status could not run *yet* (its filesystem is not attached).
STATECRAFT_WAIT_STATUS=75

# journal_replay FILE [lenient]: run every entry, newest first, each in its own subshell; failures
# are reported and do not stop the others. Returns 1 if any entry failed, $STATECRAFT_WAIT_STATUS
# if the only failures were entries that must wait. "lenient" (recovery of a dead run) ignores
# failures of umount/rmdir/rm/quiet/verbose: the dead run's mount namespace and its private target
# took those mounts and files with them.
journal_replay() {
    local file="$1" mode="${2:-}" line text failed=0 waiting=0 status
    [ -f "$file" ] || return 0
    while IFS= read -r line; do
        [ "${line:0:2}" == "E " ] || continue
        text="$(printf '%s' "${line:2}" | base64 -d)" || { failed=1; continue; }
        if [ "$mode" == "lenient" ] && [[ "$text" =~ ^(umount|rmdir|rm|quiet|verbose)\  ]]; then
            (eval "$text") > /dev/null 2>&1 || true
        else
            (eval "$text")
            status=$?
            if [ "$status" -eq "$STATECRAFT_WAIT_STATUS" ]; then
                waiting=1
            elif [ "$status" -ne 0 ]; then
                echo "statecraft: cleanup failed: $text" >&2
                failed=1
            fi
        fi
    done < <(tac "$file")
    [ "$failed" -eq 0 ] || return 1
    [ "$waiting" -eq 0 ] || return "$STATECRAFT_WAIT_STATUS"
    return 0
}
