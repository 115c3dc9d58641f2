#!/bin/sh
# Runs the image's command (STOWAGE_COMMAND, set at build time with --build-arg COMMAND=...) with
# the container's arguments: `docker run IMAGE backup` is `snapshotter backup` in a snapshotter image.
set -e
exec "/usr/local/bin/${STOWAGE_COMMAND:-stowage}" "$@"
