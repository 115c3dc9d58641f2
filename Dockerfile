# stowage as container images, from the self-contained executable of `npm run dist`.
#   npm ci && npm run dist
#   docker build -t stowage .                                        # stowage <command> ...
#   docker build --build-arg COMMAND=snapshotter -t snapshotter .    # any command as the entry point
#   docker build --target rest-server -t rest-server .               # like restic/rest-server's image
# COMMAND is any command `stowage --list-commands` prints: a new command needs no change here.
# Every image is FROM scratch: the executable (its own entrypoint; rest-server's create_user and
# delete_user too), the C and C++ runtime libraries, bcrypt's addon, and the programs its command
# runs (`stowage --list-programs COMMAND`: none for rest-server; attr's getfattr for snapshotter;
# bash, util-linux, btrfs-progs for statecraft; restic for backrest-sidecar; all for stowage) with
# their libraries. The Debian stage below is only where they are copied from.
# Legacy-builder syntax only (no BuildKit features).
FROM debian:bookworm-slim AS base
ARG ARCH=x64
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash util-linux mount tar xz-utils attr jq btrfs-progs restic ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stowage \
 && useradd --system --uid 10001 --gid stowage --home-dir /nonexistent --shell /usr/sbin/nologin stowage
COPY dist/stowage-linux-${ARCH} /usr/local/bin/stowage
COPY dist/sea-${ARCH}/bcrypt.node /usr/local/lib/stowage/bcrypt.node
COPY lib/statecraft /usr/local/lib/statecraft
COPY scripts/image-rootfs.sh /usr/local/lib/stowage-build/
RUN for command in $(stowage --list-commands) stowage-entrypoint create_user delete_user; do \
      ln -s stowage "/usr/local/bin/$command"; \
    done

# Each image's whole file system (scripts/image-rootfs.sh): the executable and the programs its
# command runs, with their libraries, and nothing else.
FROM base AS rest-server-files
RUN sh /usr/local/lib/stowage-build/image-rootfs.sh rest-server /rootfs \
 && mkdir /rootfs/data && chown stowage:stowage /rootfs/data

# rest-server for people switching from restic/rest-server's image: /data, port 8000,
# DATA_DIRECTORY, PASSWORD_FILE, DISABLE_AUTHENTICATION, OPTIONS, create_user / delete_user.
# It runs as the owner of the data directory (a new volume: the user stowage), root only for a
# root-owned directory that already holds data (as upstream always does).
FROM scratch AS rest-server
COPY --from=rest-server-files /rootfs/ /
ENV STOWAGE_COMMAND=rest-server DATA_DIRECTORY=/data PASSWORD_FILE=/data/.htpasswd
VOLUME /data
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/stowage-entrypoint"]

FROM base AS command-files
ARG COMMAND=stowage
RUN sh /usr/local/lib/stowage-build/image-rootfs.sh "$COMMAND" /rootfs

# The default: one command (COMMAND) as the entry point, `stowage` itself unless told otherwise.
FROM scratch AS command
ARG COMMAND=stowage
COPY --from=command-files /rootfs/ /
ENV STOWAGE_COMMAND=${COMMAND}
ENTRYPOINT ["/usr/local/bin/stowage-entrypoint"]
