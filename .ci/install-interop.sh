#!/usr/bin/env bash
# Install what the network-namespace interop tests (tests/strongswan_pair.rs,
# tests/netns/) need on Debian 12 (bookworm), as root:
#   strongSwan with the userspace ESP plugin (kernel-libipsec, in
#   libcharon-extra-plugins) and the GCM/OpenSSL plugins (in
#   libstrongswan-standard-plugins, only a Recommends of libstrongswan, so it is
#   listed explicitly), swanctl, both charon binaries, iperf3, ip, iptables,
#   ping and sysctl/pkill (procps), and ethtool (the cluster tests turn
#   checksum and segmentation offloads off on their veths).
#
# Idempotent and quiet: exits at once when everything is installed; runs
# `apt-get update` only when a package cannot be installed from the current
# lists. No service is started by the install (a temporary policy-rc.d denies
# it when the host has none), because the tests start charon themselves, one
# per namespace.
#
# Usage: .ci/install-interop.sh [--check]
#   --check   only report what is missing (exit 1 if anything is)
# Env: INTEROP_EXTRA_PKGS  more packages to install (space separated)
set -euo pipefail

PKGS=(
    strongswan-swanctl
    strongswan-charon
    charon-systemd
    libcharon-extra-plugins
    libstrongswan-standard-plugins
    iperf3
    iproute2
    iptables
    iputils-ping
    procps
    openssl
    ethtool
)
# shellcheck disable=SC2206
[ -n "${INTEROP_EXTRA_PKGS:-}" ] && PKGS+=(${INTEROP_EXTRA_PKGS})

log() { echo "install-interop: $*" >&2; }

missing=()
for p in "${PKGS[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    log "missing: ${missing[*]}"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    log "missing ${missing[*]} and not root to install them"
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { log "apt-get not found (Debian 12 expected)"; exit 1; }

# Do not let the packages' maintainer scripts start strongSwan services on the
# host (strongswan-starter ships an init script). Only when the host has no
# policy-rc.d of its own; removed again on exit.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
fi
cleanup() { [ "$own_policy" = 1 ] && rm -f "$policy"; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >/tmp/install-interop.$$.log 2>&1
}

log "installing ${missing[*]}"
if ! apt_install; then
    # stale or absent package lists: refresh once, then retry
    log "refreshing package lists (apt-get update)"
    if ! apt-get update -qq >/tmp/install-interop.$$.log 2>&1 || ! apt_install; then
        cat /tmp/install-interop.$$.log >&2
        rm -f /tmp/install-interop.$$.log
        log "FAILED"
        exit 1
    fi
fi
rm -f /tmp/install-interop.$$.log

# verify
for p in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || { log "$p is still not installed"; exit 1; }
done
for f in /usr/sbin/swanctl /usr/bin/iperf3; do
    [ -x "$f" ] || { log "$f missing after install"; exit 1; }
done
ls /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so >/dev/null 2>&1 \
    || { log "kernel-libipsec plugin missing after install"; exit 1; }
log "done"
