#!/usr/bin/env bash
# Makes this machine ready for the deployment test: a Docker engine, and the
# base images docker-compose.yml and the Dockerfile name, built locally as
# stand-ins where no image registry can be reached. Each step is skipped
# when what it makes is already there, so a second run takes seconds.
#
#   bash tests/deploy/prepare.sh           engine and stand-ins
#   bash tests/deploy/prepare.sh --clean   remove the stand-ins, and stop the
#                                          engine if this script started it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
marker=/run/tys-deploy-dockerd.pid
base=tys-stand-in/debian:bookworm
# Tag, then the folder under stand-ins/ that builds it.
stand_ins=("node:20-bookworm-slim node" "postgres:16 postgres" "redis:7 redis" "prom/prometheus:v2.53.0 prometheus")

step() { printf 'deploy: %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "${1:-}" = --clean ]; then
  for entry in "${stand_ins[@]}"; do docker image rm -f "${entry%% *}" >/dev/null 2>&1 || true; done
  docker image rm -f "$base" >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1 || true
  step "stand-in images removed"
  if [ -f "$marker" ]; then
    as_root kill "$(cat "$marker")" && as_root rm -f "$marker"
    step "the Docker engine this script started is stopped"
  fi
  exit 0
fi

if ! command -v dockerd >/dev/null; then
  step "installing Debian's docker.io"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  # No bridge and no NAT rules: every container of the test uses the host's network.
  step "starting dockerd (--bridge=none)"
  as_root sh -c "dockerd --bridge=none --iptables=false --ip-masq=false >/var/log/tys-deploy-dockerd.log 2>&1 & echo \$! > $marker"
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { step "dockerd did not start: see /var/log/tys-deploy-dockerd.log"; exit 1; }
fi

if ! docker image inspect "$base" >/dev/null 2>&1; then
  step "building $base with debootstrap"
  command -v debootstrap >/dev/null || as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  root="$(mktemp -d)"
  trap 'as_root rm -rf "$root"' EXIT
  as_root debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  # As Docker's own Debian images do: no service starts while a package installs.
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$root/usr/sbin/policy-rc.d" >/dev/null
  as_root chmod +x "$root/usr/sbin/policy-rc.d"
  as_root rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  as_root tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$base" >/dev/null
fi

for entry in "${stand_ins[@]}"; do
  tag="${entry%% *}" dir="$here/stand-ins/${entry##* }"
  docker image inspect "$tag" >/dev/null 2>&1 && continue
  step "building the stand-in $tag"
  context="$(mktemp -d)"
  cp -r "$dir/." "$context/"
  if [ "${entry##* }" = node ]; then
    cp "$(command -v node)" "$context/node"
    cp -r "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$context/npm"
    cp /etc/ssl/certs/ca-certificates.crt "$context/"
  fi
  docker build --network host --label tys.stand-in=true -t "$tag" "$context" >"$context.log" 2>&1 || { cat "$context.log"; exit 1; }
  rm -rf "$context" "$context.log"
done
step "engine and stand-ins ready ($(docker version --format '{{.Server.Version}}'))"
