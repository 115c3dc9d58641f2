# stowage as container images: the self-contained executable from `npm run dist` on a Debian base,
# with what the commands call at run time (tar, attr/acl for snapshotter; bash, util-linux for
# statecraft; restic and btrfs-progs for backrest-sidecar's backup-once and statecraft's snapshots; htpasswd
# for rest-server's create_user).
# Legacy-builder syntax only (no BuildKit features).
#   npm ci && npm run dist
#   docker build -t stowage .                                        # stowage <command> ...
#   docker build --build-arg COMMAND=snapshotter -t snapshotter .    # any command as the entry point
#   docker build --target rest-server -t rest-server .               # like restic/rest-server's image
# COMMAND is any command `stowage --list-commands` prints: a new command needs no change here.
FROM debian:bookworm-slim AS base
ARG ARCH=x64
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash util-linux mount tar attr acl btrfs-progs restic apache2-utils ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin stowage
COPY dist/stowage-linux-${ARCH} /usr/local/bin/stowage
COPY dist/sea-${ARCH}/bcrypt.node /usr/local/lib/stowage/bcrypt.node
COPY lib/statecraft /usr/local/lib/statecraft
COPY deploy/docker/entrypoint.sh /usr/local/bin/stowage-entrypoint
COPY deploy/docker/create_user deploy/docker/delete_user /usr/local/bin/
RUN for command in $(stowage --list-commands); do ln -s stowage "/usr/local/bin/$command"; done
ENTRYPOINT ["/usr/local/bin/stowage-entrypoint"]

# rest-server for people switching from restic/rest-server's image: /data, port 8000,
# DATA_DIRECTORY, PASSWORD_FILE, DISABLE_AUTHENTICATION, OPTIONS, create_user / delete_user.
# It runs as the owner of the data directory (a new volume: the user stowage), root only for a
# root-owned directory that already holds data (as upstream always does).
FROM base AS rest-server
ENV STOWAGE_COMMAND=rest-server DATA_DIRECTORY=/data PASSWORD_FILE=/data/.htpasswd
RUN mkdir -p /data && chown stowage:stowage /data
VOLUME /data
EXPOSE 8000

# The default: one command (COMMAND) as the entry point, `stowage` itself unless told otherwise.
FROM base AS command
ARG COMMAND=stowage
RUN "/usr/local/bin/$COMMAND" --version > /dev/null
ENV STOWAGE_COMMAND=${COMMAND}
