#!/usr/bin/env bash
# The Debian mirror apt uses on this machine (the one CI's machines reach), printed.
set -euo pipefail
found="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
echo "${DEBIAN_MIRROR:-${found:-http://deb.debian.org/debian}}"
