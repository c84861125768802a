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
# web target (devicekit/web): headless Chromium runs LiteRT.js, ffmpeg makes the fake-camera y4m clips,
# node runs the web app's pipeline.js against the Python crop (tests/test_web_pipeline.py).
# LiteRT.js itself needs no npm: devicekit.fetch.litertjs downloads the tarballs package-lock.json pins.
web_need=()
command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || web_need+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || web_need+=(ffmpeg)
command -v node >/dev/null 2>&1 || web_need+=(nodejs)
if [ ${#web_need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${web_need[@]}" >/dev/null
  else
    echo "setup: please install Debian packages: ${web_need[*]} (web tests are skipped without them)" >&2
  fi
fi
