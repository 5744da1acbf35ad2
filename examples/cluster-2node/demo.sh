#!/usr/bin/env bash
# demo.sh: the two-node cluster of this directory in network namespaces, a
# strongSwan client connected to its VIP, and a failover under a live ping.
#
#   client 192.0.2.10 --[bridge ext]-- gw1, gw2 --[bridge int]-- server 198.51.100.10
#   external VIP 192.0.2.1, internal VIP 198.51.100.1 (on no interface: Tandem
#   answers ARP for them with the cluster MACs), sync over 198.51.100.2/.3
#
# Steps: both nodes start and sync; the client connects and pings the server
# every 20 ms; the node serving the client is killed with SIGKILL; the other
# takes over (the ping shows the gap); the killed node restarts and takes its
# segments back; everything is removed at the end.
#
# Usage (as root; the kernel needs no IPsec support):
#   examples/cluster-2node/demo.sh            builds tandem (release) first
#   TANDEM=/path/to/tandem examples/cluster-2node/demo.sh
# Needs: ip, ethtool, ping, strongSwan's charon with kernel-libipsec and swanctl
# (.ci/install-interop.sh installs them on Debian).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
P=tdm-c2n
die() { echo "demo.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it creates network namespaces)"
for t in ip ethtool ping swanctl; do
    command -v "$t" >/dev/null || die "needs $t (.ci/install-interop.sh installs what is missing)"
done
CHARON=$(command -v charon-systemd || echo /usr/lib/ipsec/charon)
[ -x "$CHARON" ] || die "needs strongSwan's charon (charon-systemd or /usr/lib/ipsec/charon)"
if [ -z "${TANDEM:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    TANDEM=${CARGO_TARGET_DIR:-$ROOT/target}/release/tandem
fi

WORK=$(mktemp -d /tmp/tandem-cluster-2node.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for n in client gw1 gw2 server sw; do ip netns del "$P-$n" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
# Runs a command in a namespace (background jobs call `ip netns exec`
# directly, so that $! is the process itself).
ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "namespaces: client, gw1, gw2, server and a switch with bridges ext and int"
for n in sw client gw1 gw2 server; do
    ip netns add "$P-$n"
    ns "$n" ip link set lo up
done
for b in ext int; do
    # Multicast snooping off: the bridge must flood the cluster MAC.
    ip -n "$P-sw" link add "$b" type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$P-sw" link set "$b" up
done
plug() { # namespace interface bridge
    ip -n "$P-sw" link add "$1-$3" type veth peer name "$2" netns "$P-$1"
    ip -n "$P-sw" link set "$1-$3" master "$3" up
    ip -n "$P-$1" link set "$2" up
    # A raw socket on a veth would see checksums left to the hardware and
    # merged TCP segments; a real wire carries neither.
    ns "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null
}
plug client eth0 ext
plug server eth0 int
ip -n "$P-client" addr add 192.0.2.10/24 dev eth0
ip -n "$P-server" addr add 198.51.100.10/24 dev eth0
ip -n "$P-server" route add default via 198.51.100.1
for i in 1 2; do
    plug "gw$i" ext0 ext
    plug "gw$i" int0 int
    # The node's own address on the internal side carries the sync channel.
    ip -n "$P-gw$i" addr add "198.51.100.$((1 + i))/24" dev int0
done

say "starting tandem on gw1 and gw2"
cp "$HERE/secrets.toml" "$WORK/"
chmod 600 "$WORK/secrets.toml"
for i in 1 2; do
    sed "s|/run/tandem/node$i.sock|$WORK/node$i.sock|" "$HERE/node$i.toml" >"$WORK/node$i.toml"
    "$TANDEM" check -c "$WORK/node$i.toml"
    ip netns exec "$P-gw$i" "$TANDEM" run -c "$WORK/node$i.toml" >"$WORK/node$i.log" 2>&1 &
    PIDS[i]=$!
    disown
done
status() { "$TANDEM" status --socket "$WORK/node$1.sock"; }
synced() { status "$1" 2>/dev/null | grep -q "this node  synced   segments [0-9]"; }
for _ in $(seq 100); do synced 1 && synced 2 && break; sleep 0.1; done
synced 1 && synced 2 || { cat "$WORK"/node*.log; die "the nodes did not sync"; }
status 1 | sed -n '/^cluster/,/backlog/p'

say "strongSwan client (userspace ESP: kernel-libipsec) connects to 192.0.2.1"
mkdir -p "$WORK/ss"
cat >"$WORK/ss/strongswan.conf" <<EOF
charon {
    load = random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
    install_virtual_ip = no
    plugins {
        vici { socket = unix://$WORK/ss/charon.vici }
        kernel-netlink { fwmark = !0x42 }
        socket-default { fwmark = 0x42
                         use_ipv6 = no }
        kernel-libipsec { allow_peer_ts = yes }
    }
    filelog { demo { path = $WORK/ss/charon.log
                     default = 1 } }
}
swanctl {
    load = random nonce openssl pem pkcs1 x509 pubkey
}
EOF
export STRONGSWAN_CONF=$WORK/ss/strongswan.conf
ip netns exec "$P-client" "$CHARON" >/dev/null 2>&1 &
PIDS[3]=$!
disown
URI=unix://$WORK/ss/charon.vici
for _ in $(seq 100); do [ -S "$WORK/ss/charon.vici" ] && break; sleep 0.1; done
# swanctl's credential directories, empty: the key is in swanctl.conf.
(cd "$WORK/ss" && mkdir -p x509 x509ca x509aa x509ocsp x509ac x509crl pubkey private rsa ecdsa bliss pkcs8 pkcs12)
cp "$HERE/swanctl.conf" "$WORK/ss/"
SWANCTL_DIR=$WORK/ss ns client swanctl --load-all --noprompt --uri "$URI" >/dev/null
ns client swanctl --initiate --child net --uri "$URI" | tail -n 2
ns client ping -c 3 -i 0.2 198.51.100.10

seg=$("$TANDEM" segment-of 192.0.2.10 --count 4)
serving=1
status 2 | grep "this node" | grep -qw "$seg" && serving=2
other=$((3 - serving))
say "the client is in segment $seg: node $serving serves it"

say "ping every 20 ms; kill -9 node $serving after 2 s"
ip netns exec "$P-client" ping -D -i 0.02 -c 300 198.51.100.10 >"$WORK/ping.log" 2>&1 &
PING=$!
sleep 2
kill -9 "${PIDS[serving]}"
while kill -0 "${PIDS[serving]}" 2>/dev/null; do sleep 0.05; done
echo "killed node $serving"
sleep 2
status "$other" | sed -n '/^cluster/,/backlog/p'

say "node $serving restarts and takes its segments back"
ip netns exec "$P-gw$serving" "$TANDEM" run -c "$WORK/node$serving.toml" >>"$WORK/node$serving.log" 2>&1 &
PIDS[serving]=$!
disown
wait "$PING" || true
status "$serving" | sed -n '/^cluster/,/backlog/p'

gap=$(awk -F'[][]' '/bytes from/ { t = $2; if (last && t - last > gap) gap = t - last; last = t }
    END { printf "%.0f", gap * 1000 }' "$WORK/ping.log")
tail -n 2 "$WORK/ping.log"
echo "the longest gap between two replies: $gap ms"
ns client swanctl --list-sas --uri "$URI" | head -n 4
[ "$gap" -lt 1000 ] || die "the failover took $gap ms (more than a second)"
say "done; cleaning up"
