#!/usr/bin/env bash
# Checks systemd/sftriggerd.service and systemd/sftriggerd.sysusers offline:
#   1. systemd-analyze verify, where any warning (unknown key, bad value) is a failure;
#   2. systemd-analyze security --offline: the exposure score stays at "OK" (<= 2.0);
#   3. systemd-sysusers creates the service user in a scratch root.
# `verify` insists that ExecStart binaries exist, so it checks a copy whose
# /opt/sftriggerd/bin/sftriggerd is replaced by this checkout's venv script (make's .venv, or
# $SFTRIGGERD_BIN). systemd need not be running: these tools work on files.
# Usage: bash deploy/check-systemd.sh   (from anywhere; installs Debian's systemd if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

unit=systemd/sftriggerd.service
sysusers=systemd/sftriggerd.sysusers
installed_bin=/opt/sftriggerd/bin/sftriggerd
max_exposure=20 # systemd-analyze's threshold is the score times ten: 20 means 2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "check-systemd: installing systemd's tools (Debian package systemd)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends systemd >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends systemd >/dev/null; }
fi

bin=${SFTRIGGERD_BIN:-$PWD/.venv/bin/sftriggerd}
if [[ ! -x $bin ]]; then
  echo "check-systemd: $bin not found; run 'make' first or set SFTRIGGERD_BIN" >&2
  exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

grep -q "$installed_bin" "$unit" || { echo "check-systemd: $unit no longer runs $installed_bin" >&2; exit 1; }
sed "s#$installed_bin#$bin#g" "$unit" >"$scratch/sftriggerd.service"

# verify exits 0 on unknown keys and unparsable values (it only warns): fail on any output.
if ! out=$(systemd-analyze verify "$scratch/sftriggerd.service" 2>&1) || [[ -n $out ]]; then
  echo "check-systemd: systemd-analyze verify $unit:" >&2
  echo "${out//$scratch\//systemd/}" >&2
  exit 1
fi

if ! out=$(systemd-analyze security --offline=true --threshold="$max_exposure" \
  "$scratch/sftriggerd.service" 2>&1); then
  echo "$out" | tail -n 30 >&2
  echo "check-systemd: $unit exposure is above ${max_exposure%?}.${max_exposure: -1}" >&2
  exit 1
fi
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')

mkdir -p "$scratch/root/etc"
systemd-sysusers --root="$scratch/root" - <"$sysusers" >/dev/null 2>&1
grep -q '^sftriggerd:' "$scratch/root/etc/passwd" ||
  { echo "check-systemd: $sysusers does not create the sftriggerd user" >&2; exit 1; }

echo "check-systemd: $unit verified (exposure $score), $sysusers creates user sftriggerd"
