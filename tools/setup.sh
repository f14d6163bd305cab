#!/usr/bin/env bash
# Installs every Debian package Slipway needs to build and test, only those that are missing.
# Idempotent: a second run installs nothing and does not touch the network.
#   tools/setup.sh            # as root, or with sudo available
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap g++ libc6-dev libstdc++-12-dev binutils
  # libraries (Debian -dev packages)
  libarchive-dev libyaml-cpp-dev libseccomp-dev doctest-dev nlohmann-json3-dev libssl-dev
  libcurl4-openssl-dev zlib1g-dev libzstd-dev
  # real tools the tests use
  busybox-static umoci skopeo docker-registry debootstrap openssl
  # run by slipway itself: git:// build contexts are cloned with git
  git
  # benchmark baselines
  pigz buildah
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
