# shellcheck shell=bash
# podman-containers.sh: a JSON array with one {"<user>": [podman ps --format=json]} object for root
# (when /run/containers exists) and for every user with a /run/user/UID/containers directory.
# Generalises the custom script of the StateCraft FCOS example.

_podman_containers() {
    (
        [ ! -d /run/containers/ ] || cmd sudo -i -- podman ps --format=json | jq -c '{"root": .}'
        local PODMAN_RUN_DIR PODMAN_USER
        for PODMAN_RUN_DIR in /run/user/*/containers/; do
            [ -d "$PODMAN_RUN_DIR" ] || continue
            PODMAN_USER="$(id -un "$(basename "$(dirname "$PODMAN_RUN_DIR")")")" || continue
            cmd sudo -i -u "$PODMAN_USER" -- podman ps --format=json | jq -c --arg user "$PODMAN_USER" '{($user): .}'
        done
    ) | jq -s
}

setup_path() {
    local DEP
    for DEP in jq sudo podman; do
        command -v "$DEP" > /dev/null || { echo "Missing dependency for state script podman-containers.sh: $DEP" >&2; return 1; }
    done
    write_state_file "$1" "Podman container info" _podman_containers
}
