#!/usr/bin/env bash
# npm run test:deploy [-- --clean]: builds the project's image from its
# Dockerfile and runs its docker-compose.yml on this machine's Docker engine,
# checking each promise the files make (tests/deploy/deploy.test.ts). The
# test removes what it started: containers, volumes, the image and its build
# cache. The engine and the stand-in base images stay for the next run;
# --clean removes them too.
set -euo pipefail
cd "$(dirname "$0")/../.."
clean=false
for arg in "$@"; do
  case "$arg" in
    --clean) clean=true ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: test:deploy: unknown option '$arg' (expected --clean)" >&2; exit 2 ;;
  esac
done
bash tests/deploy/prepare.sh
status=0
npx vitest run --config tests/deploy/vitest.config.ts || status=$?
if $clean; then bash tests/deploy/prepare.sh --clean; fi
exit $status
