#!/usr/bin/env bash
# Receipts, statements and letters are PDFs made by WeasyPrint, which needs Pango (a system
# library). Install it when missing and root; otherwise say exactly what to install.
# `--warn`: only warn (make run still serves everything else); default: fail (make test).
set -euo pipefail
has_pango() { ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0'; }
if has_pango; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_pdf_libs.sh: installing Pango for WeasyPrint (PDF receipts and statements)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null
  has_pango && exit 0
fi
msg="ensure_pdf_libs.sh: Pango not found; PDF receipts, statements and letters need it. Install it (Debian/Ubuntu: sudo apt-get install -y libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)."
if [ "${1:-}" = "--warn" ]; then
  echo "WARNING: $msg" >&2
  exit 0
fi
echo "$msg" >&2
exit 1
