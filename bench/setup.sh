#!/usr/bin/env bash
# Installs what selectloop's benchmark needs on a fresh Debian/Ubuntu machine,
# then (with --run) runs it:
#
#   bash bench/setup.sh          # install socat, strace, perf, taskset, valgrind
#   bash bench/setup.sh --run    # ... and run the whole benchmark (~10 min on 2 cores)
#
# socat is needed for the forwarder comparison; perf (raw_syscalls tracepoint)
# or strace for the syscall counts; taskset (util-linux) for pinning; valgrind
# (callgrind) for the instructions per round trip. Python 3
# with asyncore (<= 3.11) is optional: without it that server is skipped.
# Optional tools that fail to install only make the driver skip their part.
set -u
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
    $SUDO apt-get update || echo "setup: apt-get update failed; trying the installed lists"
    $SUDO apt-get install -y socat strace util-linux valgrind || echo "setup: some packages failed to install"
    # perf: Debian ships linux-perf; Ubuntu linux-tools-common + linux-tools-$(uname -r)
    if ! command -v perf >/dev/null; then
        for pkg in linux-perf "linux-tools-$(uname -r)" linux-tools-common linux-tools-generic; do
            if apt-cache show "$pkg" >/dev/null 2>&1; then
                $SUDO apt-get install -y "$pkg" || true
            fi
        done
    fi
else
    echo "setup: no apt-get; install socat, strace, perf and valgrind by hand (all optional)"
fi
# perf may count tracepoints only with a low paranoia level (root bypasses it)
if [ -r /proc/sys/kernel/perf_event_paranoid ] && [ "$(id -u)" != 0 ]; then
    echo "setup: perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid); if perf cannot count syscalls the driver falls back to strace"
fi
python3 -W ignore -c 'import asyncore' 2>/dev/null || echo "setup: python3 has no asyncore (Python 3.12+): that server will be skipped"
for t in socat perf strace taskset valgrind; do
    printf 'setup: %-8s %s\n' "$t" "$(command -v "$t" || echo missing)"
done
if [ "${1:-}" = "--run" ]; then
    cd "$(dirname "$0")/.." && exec cargo run --release -p selectloop-bench --bin bench
fi
