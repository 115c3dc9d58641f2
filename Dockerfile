# stowage as a container image: the self-contained executable from `npm run dist` on a Debian base,
# with what the commands call at run time (tar, attr/acl for snapshotter; bash, util-linux for
# statecraft; restic for backrest-sidecar's backup-once; htpasswd for rest-server's create_user).
# Legacy-builder syntax (no BuildKit features). One image per command, or the umbrella:
#   npm ci && npm run dist
#   docker build -t stowage .                                          # stowage <command> ...
#   docker build --build-arg COMMAND=snapshotter -t snapshotter .      # the seed's `<image> backup`
# COMMAND is any command `stowage --help` lists; a new one needs no change here.
FROM debian:bookworm-slim
ARG COMMAND=stowage
ARG ARCH=x64
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash util-linux mount tar attr acl restic apache2-utils ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY dist/stowage-linux-${ARCH} /usr/local/bin/stowage
COPY dist/sea/bcrypt.node /usr/local/lib/stowage/bcrypt.node
COPY lib/statecraft /usr/local/lib/statecraft
COPY deploy/docker/entrypoint.sh /usr/local/bin/stowage-entrypoint
RUN for command in $(stowage --list-commands); do ln -s stowage "/usr/local/bin/$command"; done \
 && stowage "$COMMAND" --version > /dev/null
ENV STOWAGE_COMMAND=${COMMAND}
ENTRYPOINT ["/usr/local/bin/stowage-entrypoint"]
