# shellcheck shell=bash
# fcos-release.sh: a JSON file describing the running Fedora CoreOS installation: machine-id,
# os-release, the stream (read from the system, not assumed), and rpm-ostree deployments.

_fcos_release() {
    local STREAM VERSION ARCH
    # shellcheck source=/dev/null
    VERSION="$(. /etc/os-release && printf '%s' "${OSTREE_VERSION:-${VERSION_ID:-}}")"
    STREAM="$(rpm-ostree status --json 2> /dev/null | jq -r '.deployments[] | select(.booted) | .["base-commit-meta"]["fedora-coreos.stream"] // empty' | head -n 1)"
    [ -n "$STREAM" ] || STREAM="$(jq -r '.stream // empty' /etc/coreos/stream.json 2> /dev/null || true)"
    ARCH="$(uname -m)"
    jq -n \
        --arg machine_id "$(cat /etc/machine-id 2> /dev/null)" \
        --arg stream "$STREAM" --arg version "$VERSION" --arg arch "$ARCH" \
        --argjson os_release "$(sed -n 's/^\([A-Z_]*\)=\(.*\)$/\1\t\2/p' /etc/os-release | jq -R 'split("\t") | {(.[0]): (.[1] | ltrimstr("\"") | rtrimstr("\""))}' | jq -s add)" \
        --argjson deployments "$(rpm-ostree status --json 2> /dev/null | jq '.deployments // []' || echo '[]')" \
        '{machine_id: $machine_id, stream: $stream, version: $version, arch: $arch,
          artifacts: (if $stream == "" then null else
            "https://builds.coreos.fedoraproject.org/prod/streams/\($stream)/builds/\($version)/\($arch)/" end),
          os_release: $os_release, deployments: $deployments}'
}

setup_path() {
    write_state_file "$1" "Fedora CoreOS release information" _fcos_release
}
