#!/usr/bin/env bash
# The test suite with every clock of the stack moved ahead (default: a year), to prove that no test
# depends on today's date. Python and the JVMs (Kafka, Spark) read the moved clock through
# libfaketime; VictoriaMetrics (Go reads the clock without libc) runs under qemu's user-mode
# emulator, whose clock calls go through libc and so see the same moved clock.
#   tests/clock_ahead.sh [+365d] [pytest arguments ...]
set -euo pipefail
cd "$(dirname "$0")/.."
shift_by=${1:-+365d}
shift || true

missing=()
command -v faketime >/dev/null || missing+=(faketime)
command -v qemu-x86_64 >/dev/null || missing+=(qemu-user)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} from Debian ..."
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
lib=$(dpkg -L libfaketime | grep '/libfaketime.so.1$' | head -n 1)

wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
printf '#!/bin/sh\nexec qemu-x86_64 %s "$@"\n' "$(command -v victoria-metrics)" >"$wrappers/victoria-metrics"
# The JVMs keep the real monotonic clock: they wait on it with absolute deadlines that libfaketime
# does not translate, so with a moved monotonic clock a timed wait lasts the whole shift. (Python
# needs the opposite: its sleep fails with EINVAL against a real monotonic clock.)
java_bin=$(readlink -f "$(command -v java)")
mkdir -p "$wrappers/jdk/bin"
printf '#!/bin/sh\nDONT_FAKE_MONOTONIC=1 exec %s "$@"\n' "$java_bin" >"$wrappers/jdk/bin/java"
chmod +x "$wrappers/victoria-metrics" "$wrappers/jdk/bin/java"
export PATH="$wrappers/jdk/bin:$PATH" JAVA_HOME="$wrappers/jdk"

echo "running the suite with the clock at $(LD_PRELOAD=$lib FAKETIME=$shift_by date -u +%FT%TZ)"
export RTDP_STACK__VICTORIA_METRICS__BINARY="$wrappers/victoria-metrics"
export LD_PRELOAD=$lib FAKETIME=$shift_by
.venv/bin/pytest "$@"
