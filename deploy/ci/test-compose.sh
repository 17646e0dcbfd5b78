#!/usr/bin/env bash
# `make test-compose`: docker-compose.yml on a real Docker engine (tests/compose).
# Installs what it needs from Debian (docker.io, debootstrap, docker-compose) when
# missing, starts dockerd in the background when none runs and stops it by its PID
# at the end, builds the CI stand-ins of base images no registry can give
# (deploy/ci/bases/build.sh), then runs the tests. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ "${#need[@]}" -gt 0 ]; then
  echo "test-compose: installing ${need[*]} from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
started=""
if ! docker info >/dev/null 2>&1; then
  state="$(mktemp -d)"
  dockerd --pidfile "$state/dockerd.pid" >"$state/dockerd.log" 2>&1 &
  started=$!
  trap 'kill "$started" 2>/dev/null; wait "$started" 2>/dev/null || true' EXIT
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { cat "$state/dockerd.log"; exit 1; }
  echo "test-compose: started dockerd (pid $started)"
fi
bash deploy/ci/bases/build.sh
.venv/bin/pytest -m compose tests/compose -s -p no:cacheprovider "$@"
