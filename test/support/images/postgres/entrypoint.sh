#!/bin/sh
# First start: a cluster with local trust (the container has no network); then the server as PID 1.
set -e
install -d -o postgres -g postgres -m 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    setpriv --reuid=postgres --regid=postgres --init-groups initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=trust >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='' -c unix_socket_directories=/var/run/postgresql
