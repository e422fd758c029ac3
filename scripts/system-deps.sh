#!/usr/bin/env bash
# Install the host packages faaslab needs, only those that are missing:
#   dockerd (docker.io) when no engine answers, mmdebstrap for the runtime
#   and NoSQL images, npm for the NoSQL image (dynalite) and the Node.js
#   runtime, node (the Node.js runtime's unit tests run its server with the
#   host's node), a static busybox for the storage image's health check,
#   venv support for Python, and for Docker Swarm: docker-registry (images
#   for the other nodes) and iproute2 + util-linux (the swarm tests' network
#   namespaces). Debian-like systems, as root.
set -euo pipefail

missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v node >/dev/null || missing+=(nodejs)
# Debian packages npm apart; NodeSource's nodejs carries its own.
# npm fetches dynalite for the NoSQL image (with the host's registry settings).
command -v npm >/dev/null || missing+=(npm)
# The storage image's health check: a static busybox (ldd fails on a static binary).
if ! [ -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v ip >/dev/null || missing+=(iproute2)
command -v nsenter >/dev/null || missing+=(util-linux)
if ! command -v dockerd >/dev/null; then
  # An engine that already answers (or DOCKER_HOST) is used as it is.
  if [ -z "${DOCKER_HOST:-}" ] && ! [ -S /var/run/docker.sock ]; then
    missing+=(docker.io)
  fi
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "faaslab needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "faaslab needs: ${missing[*]} (no apt-get here: install them with your package manager)" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]} >/dev/null
