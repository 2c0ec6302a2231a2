#!/usr/bin/env bash
# What the tests need beyond `npm install`, on a fresh Debian machine: the
# local Postgres and Redis running, and Debian's packages below (never a
# downloaded browser or binary). Starts or installs only what is
# missing, so running it again costs a second. Used by `npm test` (pretest)
# and by .ci/run.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "prepare: starting Postgres"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! redis_up; then
  echo "prepare: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
for _ in $(seq 1 60); do
  if pg_up && redis_up; then break; fi
  sleep 0.5
done
pg_up || { echo "prepare: Postgres is not reachable on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "prepare: Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

# Debian packages the tests use: the browser (Chromium), Prometheus's
# server and promtool (alert rules), docker-compose (validating the compose
# file; no engine is needed for that).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/promtool ] && [ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/bin/docker-compose ] || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "prepare: the tests need Debian's ${missing[*]}: run 'sudo apt-get install ${missing[*]}'" >&2
    exit 1
  fi
  echo "prepare: installing Debian's ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
