#!/usr/bin/env bash
# The system packages the local stack and the browser tests need (Debian/Ubuntu, apt), installed when missing:
# the Pub/Sub and Firestore emulators (google-cloud-cli and Java), Node.js and npm (the Firebase Auth emulator is
# an npm package) and Chromium (the page's browser tests; Playwright cannot download its own browser here).
# Says nothing when all is there; says what it installs; exits 1 saying what to do where it cannot install.
set -euo pipefail

missing=()
reasons=()
need() { missing+=("$@"); }

emulators_present() {
  command -v gcloud >/dev/null && command -v java >/dev/null || return 1
  local sdk
  sdk="$(dirname "$(readlink -f "$(command -v gcloud)")")/.."
  [ -d "$sdk/platform/pubsub-emulator" ] && [ -d "$sdk/platform/cloud-firestore-emulator" ]
}

if ! emulators_present; then
  need google-cloud-cli google-cloud-cli-pubsub-emulator google-cloud-cli-firestore-emulator default-jre-headless
  reasons+=("the Pub/Sub and Firestore emulators (google-cloud-cli, Java)")
fi
if ! command -v npm >/dev/null; then
  need nodejs npm
  reasons+=("Node.js and npm (the Firebase Auth emulator is an npm package)")
fi
if [ ! -x /usr/bin/chromium ]; then
  need chromium chromium-driver
  reasons+=("Chromium (the page's browser tests)")
fi
[ ${#missing[@]} -eq 0 ] && exit 0

refuse() {
  echo "error: $1" >&2
  printf '  missing: %s\n' "${reasons[@]}" >&2
  echo "  install them, then run make again:  sudo apt-get install ${missing[*]}" >&2
  [[ " ${missing[*]} " == *" google-cloud-cli "* ]] && echo "  (google-cloud-cli comes from Google's apt" \
    "repository: https://cloud.google.com/sdk/docs/install#deb)" >&2
  exit 1
}

if [ "$EUID" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  refuse "system packages are missing and this user can install none (not root, no password-less sudo)"
fi
command -v apt-get >/dev/null || refuse "system packages are missing and there is no apt-get here"

for reason in "${reasons[@]}"; do echo "installing ${reason}"; done
echo "  apt-get install ${missing[*]}"
"${as_root[@]}" apt-get update -qq || refuse "apt-get update failed"
if [[ " ${missing[*]} " == *" google-cloud-cli "* ]] && ! apt-cache show google-cloud-cli >/dev/null 2>&1; then
  refuse "google-cloud-cli is not in this machine's apt sources"
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
  || refuse "apt-get install failed (see above)"
