#!/bin/sh
# Runs the image's command (STOWAGE_COMMAND, chosen at build time) with the container's
# arguments: `docker run IMAGE backup` is `snapshotter backup` in a snapshotter image.
set -e
command="${STOWAGE_COMMAND:-stowage}"
if [ "$command" != "rest-server" ]; then
    exec "/usr/local/bin/$command" "$@"
fi

# rest-server, with restic/rest-server's image conventions.
DATA_DIRECTORY="${DATA_DIRECTORY:-/data}"
PASSWORD_FILE="${PASSWORD_FILE:-$DATA_DIRECTORY/.htpasswd}"
mkdir -p "$DATA_DIRECTORY"
if [ -n "$DISABLE_AUTHENTICATION" ]; then
    OPTIONS="--no-auth $OPTIONS"
else
    if [ ! -f "$PASSWORD_FILE" ]; then
        # It holds password hashes: never world-readable (restic/rest-server#318). Owned by whom
        # the server runs as (the data directory's owner), so that it can read it.
        (umask 077 && : > "$PASSWORD_FILE")
        chown "$(stat -c %u:%g "$DATA_DIRECTORY")" "$PASSWORD_FILE"
    fi
    if [ ! -s "$PASSWORD_FILE" ]; then
        echo
        echo "**WARNING** No user exists, please 'docker exec -it \$CONTAINER_ID create_user'"
        echo
    fi
    set -- --htpasswd-file "$PASSWORD_FILE" "$@"
fi
# Drop root when the data belongs to someone else (a new volume belongs to stowage).
if [ "$(id -u)" = 0 ]; then
    owner="$(stat -c %u "$DATA_DIRECTORY")"
    group="$(stat -c %g "$DATA_DIRECTORY")"
    if [ "$owner" != 0 ]; then
        # shellcheck disable=SC2086 # OPTIONS is a list of flags, split on purpose (as upstream)
        exec setpriv --reuid="$owner" --regid="$group" --clear-groups -- \
            /usr/local/bin/rest-server --path "$DATA_DIRECTORY" "$@" $OPTIONS
    fi
fi
# shellcheck disable=SC2086
exec /usr/local/bin/rest-server --path "$DATA_DIRECTORY" "$@" $OPTIONS
