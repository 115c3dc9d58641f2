#!/usr/bin/env bash
# Replay the cleanup journal of a dead run (from `statecraft --recover`), inside a private mount
# namespace: replay.sh JOURNAL. Exits 0 when every entry that matters succeeded (the journal is then
# removed); undoing mounts, files and directories of the dead run's namespace cannot fail usefully.
set -u
# shellcheck source=include/statecraft.sh
source "$LIB_DIR/include/statecraft.sh"
export STATECRAFT_JOURNAL="$1"
if journal_replay "$1" lenient; then
    rm -f "$1"
else
    exit 1
fi
