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
work="$(mktemp -d)"
cleanup() {
  if [ -n "$started" ]; then kill "$started" 2>/dev/null; wait "$started" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  dockerd --pidfile "$work/dockerd.pid" >"$work/dockerd.log" 2>&1 &
  started=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { cat "$work/dockerd.log"; exit 1; }
  echo "test-compose: started dockerd (pid $started)"
fi
bash deploy/ci/bases/build.sh

# Both composes users have: Debian bookworm's docker-compose 1.29, and v2 (the
# `docker compose` plugin) from Debian's stable release, where bookworm has none:
# its package holds one static binary, taken out of the .deb, not installed.
if docker compose version >/dev/null 2>&1; then
  v2="docker compose"
else
  mirror="$(bash deploy/ci/debian-mirror.sh)"
  curl -fsS -o "$work/Packages.xz" "$mirror/dists/stable/main/binary-amd64/Packages.xz"
  pool="$(xz -dc "$work/Packages.xz" \
    | awk '/^Package: docker-compose$/{f=1} f&&/^Filename:/{print $2; f=0}' | head -n1)"
  curl -fsS -o "$work/compose.deb" "$mirror/$pool"
  dpkg-deb -x "$work/compose.deb" "$work/root"
  v2="$work/root/usr/libexec/docker/cli-plugins/docker-compose"
fi
for compose in "$(command -v docker-compose)" "$v2"; do
  echo "test-compose: with $($compose version | head -n1)"
  BALANCE_COMPOSE="$compose" .venv/bin/pytest -m compose tests/compose -s -p no:cacheprovider "$@"
done
