#!/usr/bin/env bash
# Browser tests drive Debian's chromium through Playwright. Install it when missing and root;
# otherwise say exactly what to install.
set -euo pipefail
CHROMIUM=${PATIENTDESK_CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium.sh: installing Debian's chromium for the browser tests..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  exit 0
fi
echo "ensure_chromium.sh: $CHROMIUM not found. Install Debian's chromium (sudo apt-get install -y chromium) or set PATIENTDESK_CHROMIUM to a Chromium binary." >&2
exit 1
