#!/usr/bin/env bash
# Checks deploy/prometheus/alerts.yaml with Prometheus' own promtool: `check rules` (syntax,
# PromQL, templates) and `test rules` (the alert unit tests in alerts.test.yaml).
# promtool comes from PATH, or else from Debian's prometheus package: the .deb is downloaded
# with apt and only usr/bin/promtool is unpacked into a cache (nothing is installed, no server
# is started). Set PROMTOOL=/path/to/promtool to use another one.
# Usage: bash deploy/check-prometheus.sh
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sftriggerd-tools

find_promtool() {
  if [[ -n ${PROMTOOL:-} ]]; then echo "$PROMTOOL"; return; fi
  if command -v promtool >/dev/null 2>&1; then command -v promtool; return; fi
  if [[ -x $cache/promtool ]]; then echo "$cache/promtool"; return; fi

  command -v apt-get >/dev/null 2>&1 ||
    { echo "check-prometheus: no promtool and no apt-get; install promtool or set PROMTOOL" >&2; return 1; }
  echo "check-prometheus: fetching promtool from Debian's prometheus package" >&2
  local scratch
  scratch=$(mktemp -d)
  # apt downloads as the _apt user into a directory it can write.
  chmod 0755 "$scratch"
  if ! (cd "$scratch" && apt-get download -qq prometheus >/dev/null 2>&1); then
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$scratch" && apt-get download -qq prometheus >/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$scratch"/prometheus_*.deb | tar -x -C "$scratch" ./usr/bin/promtool
  mkdir -p "$cache"
  mv "$scratch/usr/bin/promtool" "$cache/promtool"
  rm -rf "$scratch"
  echo "$cache/promtool"
}

promtool=$(find_promtool)
"$promtool" check rules deploy/prometheus/alerts.yaml
(cd deploy/prometheus && "$promtool" test rules alerts.test.yaml)
