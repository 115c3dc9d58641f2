# stowage as container images, from the self-contained executable of `npm run dist`.
#   npm ci && npm run dist
#   docker build -t stowage .                                        # stowage <command> ...
#   docker build --build-arg COMMAND=snapshotter -t snapshotter .    # any command as the entry point
#   docker build --target rest-server -t rest-server .               # like restic/rest-server's image
# COMMAND is any command `stowage --list-commands` prints: a new command needs no change here.
# The command images are Debian with what the commands call at run time (tar, attr/acl for
# snapshotter; bash, util-linux for statecraft; restic and btrfs-progs for backrest-sidecar's
# backup-once and statecraft's snapshots). The rest-server image holds nothing but the executable,
# the C and C++ runtime libraries it links, and bcrypt's addon: the executable is its own entrypoint
# and its own create_user / delete_user.
# Legacy-builder syntax only (no BuildKit features).
FROM debian:bookworm-slim AS base
ARG ARCH=x64
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash util-linux mount tar attr acl btrfs-progs restic ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stowage \
 && useradd --system --uid 10001 --gid stowage --home-dir /nonexistent --shell /usr/sbin/nologin stowage
COPY dist/stowage-linux-${ARCH} /usr/local/bin/stowage
COPY dist/sea-${ARCH}/bcrypt.node /usr/local/lib/stowage/bcrypt.node
COPY lib/statecraft /usr/local/lib/statecraft
RUN for command in $(stowage --list-commands) stowage-entrypoint create_user delete_user; do \
      ln -s stowage "/usr/local/bin/$command"; \
    done
ENTRYPOINT ["/usr/local/bin/stowage-entrypoint"]

# The rest-server image's whole file system: the executable and its symlinks, the libraries that it
# and the bcrypt addon load (as ldd names them), the users root and stowage, /tmp and /data.
FROM base AS rest-server-files
RUN set -e; mkdir -p /rootfs/tmp /rootfs/etc /rootfs/data; chmod 1777 /rootfs/tmp; \
    chown stowage:stowage /rootfs/data; \
    cp -a --parents /usr/local/bin/stowage /usr/local/bin/rest-server /usr/local/bin/stowage-entrypoint \
      /usr/local/bin/create_user /usr/local/bin/delete_user /usr/local/lib/stowage /rootfs/; \
    for lib in $(ldd /usr/local/bin/stowage /usr/local/lib/stowage/bcrypt.node \
        | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u); do \
      cp -L --parents "$lib" /rootfs/; \
    done; \
    grep -E '^(root|stowage):' /etc/passwd > /rootfs/etc/passwd; \
    grep -E '^(root|stowage):' /etc/group > /rootfs/etc/group

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

# The default: one command (COMMAND) as the entry point, `stowage` itself unless told otherwise.
FROM base AS command
ARG COMMAND=stowage
RUN "/usr/local/bin/$COMMAND" --version > /dev/null
ENV STOWAGE_COMMAND=${COMMAND}
