#!/usr/bin/env bash
# Installs the Debian packages Linli needs when they are missing: a CJK font (pages, posters) and
# Chromium (browser tests). Does nothing when they are already there.
set -euo pipefail

want=()
case "${1:-fonts}" in
  fonts) dpkg -s fonts-noto-cjk >/dev/null 2>&1 || want+=(fonts-noto-cjk) ;;
  browser)
    dpkg -s fonts-noto-cjk >/dev/null 2>&1 || want+=(fonts-noto-cjk)
    [ -x /usr/bin/chromium ] || want+=(chromium)
    ;;
esac
[ ${#want[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${want[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "Need root to install ${want[*]}; install them and retry." >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
