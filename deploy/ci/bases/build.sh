#!/usr/bin/env bash
# CI stand-ins for the registry images the compose file names, built from Debian
# packages where no image registry is reachable (this CI's machines). Never in place
# of a real image: an image already present, or one `docker pull` can fetch, is
# used as it is; only an image that can be neither is built here, under its name.
#
#   bash deploy/ci/bases/build.sh    (needs root, docker, debootstrap)
#
# A minimal Debian bookworm root file system from debootstrap (the mirror apt uses
# here) is imported as balance-ci/bookworm; python:3.11-slim, postgres:15 and
# rabbitmq:3 are built on it from Debian's python3, postgresql-15 and
# rabbitmq-server. They trust the certificate authorities this machine trusts, so
# pip and uv inside a build reach the package index the way the host does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mirror="$(bash "$here/../debian-mirror.sh")"

present() { docker image inspect "$1" >/dev/null 2>&1; }
stand_in() {
  [ "$(docker image inspect -f '{{ index .Config.Labels "balance-ci.stand-in" }}' "$1" 2>/dev/null)" = true ]
}
pulled() { timeout 120 docker pull -q "$1" >/dev/null 2>&1; }
# A stand-in's recipe: its Dockerfile and entrypoint. One built from another recipe
# is built again, so a change to them reaches machines that built one before.
recipe() {
  local name="${1%%:*}" part
  for part in "$here/$name.Dockerfile" "$here/$name-entrypoint.sh"; do
    [ -f "$part" ] && cat "$part"
  done | sha256sum | cut -c1-16
}
built_from_recipe() {
  [ "$(docker image inspect -f '{{ index .Config.Labels "balance-ci.recipe" }}' "$1" 2>/dev/null)" = "$(recipe "$1")" ]
}

wanted=()
for image in python:3.11-slim postgres:15 rabbitmq:3; do
  if present "$image" && ! stand_in "$image"; then
    echo "bases: $image is present: used as it is"
  elif pulled "$image"; then
    echo "bases: $image pulled from its registry"  # in place of a stand-in, if one was here
  elif present "$image" && built_from_recipe "$image"; then
    echo "bases: $image: no registry answers; the stand-in built before is used"
  else
    wanted+=("$image")
  fi
done
[ "${#wanted[@]}" -eq 0 ] && exit 0

if ! present balance-ci/bookworm; then
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  echo "bases: debootstrap bookworm from $mirror"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - balance-ci/bookworm >/dev/null
fi

context="$(mktemp -d)"
trap 'rm -rf "$context" "${root:-}"' EXIT
cp "$here"/*.Dockerfile "$here"/*-entrypoint.sh "$context"/
# The host's trusted authorities (a proxy's own among them, where there is one).
cp /etc/ssl/certs/ca-certificates.crt "$context"/host-ca-certificates.crt
printf '%s\n' "$mirror" > "$context"/mirror

for image in "${wanted[@]}"; do
  file="${image%%:*}.Dockerfile"
  echo "bases: building the stand-in $image from Debian packages ($file)"
  if ! docker build -q -t "$image" --label balance-ci.stand-in=true \
      --label "balance-ci.recipe=$(recipe "$image")" -f "$context/$file" "$context" \
      >"$context/build.log" 2>&1; then
    cat "$context/build.log" >&2
    exit 1
  fi
done
