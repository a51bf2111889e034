#!/usr/bin/env bash
# Runs a command with the network cut: in a new network namespace (`unshare -n`; as a user, `unshare -rn` where
# user namespaces are allowed) with only its loopback up, so that what needs the network (a download at test
# collection) fails here, not first on a machine without one, while servers a test starts on 127.0.0.1 still
# answer. Where no such namespace can be made, says so and runs the command with the network.
set -euo pipefail
ip="$(PATH="$PATH:/usr/sbin:/sbin" command -v ip || true)"
if [ -n "$ip" ] && command -v unshare >/dev/null; then
  for flags in -n -rn; do
    if unshare "$flags" "$ip" link set lo up 2>/dev/null; then
      exec unshare "$flags" sh -c '"$0" link set lo up && exec "$@"' "$ip" "$@"
    fi
  done
fi
echo "note: cannot cut the network here (unshare -n needs root, unshare -rn user namespaces, both iproute2's ip);" \
  "running with the network, so a test that needs it will not be caught: $*" >&2
exec "$@"
