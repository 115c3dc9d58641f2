#!/bin/sh
# image-rootfs.sh COMMAND ROOTFS: the whole file system of COMMAND's image (stowage: the umbrella),
# run in the Dockerfile's base stage. It holds the executable with its symlinks and bcrypt's addon,
# the programs `stowage --list-programs COMMAND` names (found on PATH in the base; PACKAGE:* is every
# program of that Debian package), every library ldd names for any of them, the C.UTF-8 locale
# where there are programs, lib/statecraft where statecraft is in the image, the users root and
# stowage, the CA certificates, /tmp; and the merged-/usr links the base has (/bin -> usr/bin, ...),
# so that `#!/bin/sh` and the dynamic loader's own path resolve as on Debian.
set -eu
command="$1"
rootfs="$2"

programs="$(stowage --list-programs "$command")"
mkdir -p "$rootfs/tmp" "$rootfs/etc/ssl/certs"
chmod 1777 "$rootfs/tmp"
for dir in bin sbin lib lib64; do
  if [ -L "/$dir" ]; then
    target="$(readlink "/$dir")"
    mkdir -p "$rootfs/${target#/}"
    ln -s "$target" "$rootfs/$dir"
  fi
done

# The executable and its symlinks (every command's name, the entrypoint, create_user ...), the addon.
mkdir -p "$rootfs/usr/local/bin"
cp -a /usr/local/bin/. "$rootfs/usr/local/bin/"
cp -a --parents /usr/local/lib/stowage "$rootfs/"
files="/usr/local/bin/stowage /usr/local/lib/stowage/bcrypt.node"
programs_found=""
for program in $programs; do
  case "$program" in
    *:\*) found="$(dpkg -L "${program%:*}" | grep -E '^/(usr/)?s?bin/.' | while read -r f; do
           if [ -f "$f" ] && [ -x "$f" ]; then echo "$f"; fi; done)" ;;
    *) found="$(command -v "$program")" || found="" ;;
  esac
  [ -n "$found" ] || { echo "image-rootfs: $program (for $command) is not in the base image" >&2; exit 1; }
  programs_found="$programs_found $found"
done
for file in $programs_found; do cp -L --parents "$file" "$rootfs/"; done
files="$files $programs_found"
# The C.UTF-8 locale statecraft runs the backup command in (and any program may ask for).
if [ -n "$programs" ]; then cp -a --parents /usr/lib/locale/C.utf8 "$rootfs/"; fi
case "$command" in
  stowage | statecraft) cp -a --parents /usr/local/lib/statecraft "$rootfs/" ;;
esac

# ldd exits non-zero for a static program: it has no libraries to copy.
for file in $files; do ldd "$file" 2> /dev/null || true; done \
  | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' | sort -u \
  | while read -r lib; do cp -L --parents "$lib" "$rootfs/"; done

grep -E '^(root|stowage):' /etc/passwd > "$rootfs/etc/passwd"
grep -E '^(root|stowage):' /etc/group > "$rootfs/etc/group"
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
# The image is whole: its own loader finds every library of every dynamic program in it, and runs
# the executable.
loader="$(ldd /usr/local/bin/stowage | awk '$1 ~ /^\// { print $1 }')"
for file in $files; do
  if ldd "$file" > /dev/null 2>&1; then chroot "$rootfs" "$loader" --list "$file" > /dev/null; fi
done
chroot "$rootfs" /usr/local/bin/stowage --version > /dev/null
