#!/usr/bin/env bash
# System packages the tests and tools need (Debian). Idempotent; skipped when present.
set -euo pipefail
need=()
command -v adb >/dev/null 2>&1 || need+=(adb)
command -v kotlinc >/dev/null 2>&1 || need+=(kotlin)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install Debian packages: ${need[*]} (tests that need them are skipped)" >&2
  fi
fi
