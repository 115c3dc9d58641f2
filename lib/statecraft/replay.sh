#!/usr/bin/env bash
# Replay the cleanup journal of a dead run (from `statecraft --recover`), inside a private mount
# namespace: replay.sh JOURNAL. Exits 0 when every entry that matters succeeded (the journal is then
# removed); undoing mounts, files and directories of the dead run's namespace cannot fail usefully.
# Exits 75 when entries must wait for a filesystem that is not attached (the journal is kept; the
# entries that did run are idempotent and run again next time), 1 when an entry failed.
set -u
# shellcheck source=include/statecraft.sh
source "$LIB_DIR/include/statecraft.sh"
export STATECRAFT_JOURNAL="$1"
journal_replay "$1" lenient
status=$?
[ "$status" -ne 0 ] || rm -f "$1"
exit "$status"
