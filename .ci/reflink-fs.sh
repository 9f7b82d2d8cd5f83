#!/usr/bin/env bash
# Mount a small XFS image with reflink on, so the store's copy-on-write import path is tested
# and benchmarked for real (the machine's own ext4 cannot clone). Needs root and loop devices;
# prints the mount point on its last line, or nothing when it cannot be had.
set -uo pipefail
mnt=/mnt/modeldepot-xfs
img=/var/tmp/modeldepot-xfs.img
if mountpoint -q "$mnt"; then echo "$mnt"; exit 0; fi
if ! command -v mkfs.xfs >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq xfsprogs; } >&2 || exit 0
fi
{ truncate -s 4G "$img" && mkfs.xfs -q -f -m reflink=1 "$img" && mkdir -p "$mnt" \
  && mount -o loop "$img" "$mnt"; } >&2 || exit 0
echo "$mnt"
