# shellcheck shell=bash
# The helper library every state script can use; sourced before each script.
for _include in output paths mounts traps btrfs files; do
    # shellcheck source=/dev/null
    source "$LIB_DIR/include/$_include.sh"
done
unset _include
