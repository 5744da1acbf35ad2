#!/usr/bin/env bash
# bench/iperf.sh: TCP throughput through network namespaces, four ways, in one run.
#
#   client 192.0.2.10/24 --- ext0 192.0.2.1/24 [gateway] int0 198.51.100.1/24 --- 198.51.100.10/24 server
#
#   P  plain routing, no IPsec (the client routes 198.51.100.0/24 via the gateway)
#   S  strongSwan <-> strongSwan, both charons with kernel-libipsec (userspace ESP)
#   G  strongSwan client (kernel-libipsec) <-> `tandem run` on the gateway
#   T  Tandem <-> Tandem, site to site (initiator on the client, responder on the gateway)
#   C  the same Tandem initiator through a 2-node Tandem cluster (`tandem run` with a
#      [cluster] section on AF_PACKET ports), as tests/cluster_netns.rs builds it:
#
#        client 192.0.2.10 --[ext bridge]-- gw1 ext0 .2, gw2 ext0 .3   (VIP 192.0.2.1)
#        server 198.51.100.10 --[int bridge]-- gw1 int0 .2, gw2 int0 .3 (VIP 198.51.100.1)
#
#      The bridges live in a switch namespace with multicast snooping off, so the
#      frames to the cluster MACs reach both nodes; the sync channels run over int.
#      One node owns the client's segment (decrypts and encrypts), the other only
#      sees the same frames (counts outbound packets, samples inbound ESP). The
#      summary adds each node's CPU, which one served (`tandem status --json`:
#      cluster.owned and the decrypted/encrypted/counted counters), and the
#      standby's CPU time per packet relative to the owner's.
#
# Every case gets fresh namespaces. In each, iperf3 sends client -> server with
# 1 and 4 TCP streams, REPS times, for DURATION seconds; the summary shows the
# medians, each case as a ratio to P, and T (and G) as a ratio to S. The CPU
# time (utime + stime from /proc/<pid>/stat) of the charon/tandem processes is
# measured over every transfer, in % of one CPU.
#
# Usage (as root):  bench/iperf.sh
#   DURATION=30 REPS=3          seconds per transfer, repetitions (medians over REPS)
#   CASES="P S G T"             which cases, in this order (C: add it by hand); a case
#                               listed again runs again, its transfers pooled with
#                               the earlier ones: CASES="T C T C T C" REPS=1 interleaves
#                               the repetitions, so a noisy machine's drift falls on
#                               both cases alike
#   STREAMS="1 4"               iperf3 -P values
#   REVERSE=1                   the server sends, the client receives (iperf3 -R)
#   TANDEM_BIN=path             use this tandem binary instead of `cargo build --release`
#   CARGO_TARGET_DIR=dir        where cargo builds (default: the workspace's target/)
#   OUT=dir                     results (default bench/results/<date-time>/)
#   T_NAT=auto|0|1              T through a masquerading NAT namespace: 0 never,
#                               1 always, auto (default) only when the direct run
#                               fails (Tandem <-> Tandem needs `encap = true`)
#   WAIT_QUIET=60 QUIET_PCT=15  before a transfer wait (at most WAIT_QUIET s) until
#                               the machine is less than QUIET_PCT % busy
#   FOREIGN_MAX=25 MAX_ATTEMPTS=3  repeat a transfer during which processes outside
#                               our namespaces used FOREIGN_MAX % of one CPU or more
#   PERF=1                      also profile the tandem processes with `perf record`
#                               during the first 1-stream transfer of G, T and C
#   C_OFFLOADS=on|off           C: leave the veth offloads as they are (on, default)
#                               or turn them off as tests/cluster_netns.rs does
#                               (see cluster_offloads below)
#   C_RING_MIB=64               C: the nodes' ring_mib (0: recvmmsg, no receive ring)
#   UP_TIMEOUT=30               seconds to wait for a tunnel (or a daemon) to come up
#   KEEP=1                      keep the scratch directory (configs, logs)
#
# Needs: ip, iperf3, jq, swanctl, charon-systemd (or /usr/lib/ipsec/charon) with
# the kernel-libipsec plugin (.ci/install-interop.sh); iptables or nft for the
# NAT fallback; perf for PERF=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

DURATION=${DURATION:-30}
REPS=${REPS:-3}
REVERSE=${REVERSE:-0}
CASES=${CASES:-P S G T}
STREAMS=${STREAMS:-1 4}
T_NAT=${T_NAT:-auto}
UP_TIMEOUT=${UP_TIMEOUT:-30}
WAIT_QUIET=${WAIT_QUIET:-60}
QUIET_PCT=${QUIET_PCT:-15}
FOREIGN_MAX=${FOREIGN_MAX:-25}
MAX_ATTEMPTS=${MAX_ATTEMPTS:-3}
PERF=${PERF:-0}
C_OFFLOADS=${C_OFFLOADS:-on}
C_RING_MIB=${C_RING_MIB:-64}
KEEP=${KEEP:-0}
STAMP=$(date +%Y-%m-%d_%H%M%S)
OUT=${OUT:-$HERE/results/$STAMP}

IKE_PROPOSAL=aes256gcm16-prfsha256-x25519
ESP_PROPOSAL=aes256gcm16
CLIENT=192.0.2.10
GW_EXT=192.0.2.1
GW_INT=198.51.100.1
SERVER=198.51.100.10
INT_NET=198.51.100.0/24
# the NAT fallback layout (client behind a masquerading namespace)
NAT_CLIENT=10.0.0.10
NAT_INSIDE=10.0.0.1
NAT_OUTSIDE=192.0.2.20

HZ=$(getconf CLK_TCK)
PFX="tb$$"                       # namespace names: tb<pid>-client, ...
WORK=$(mktemp -d /tmp/tandem-bench.XXXXXX)
NSS=()                           # namespaces of the current case
PIDS=()                          # processes we started in the current case

log() { echo "[$(date +%T)] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- cleanup -------------------------------------------------------------------

# Stops the processes we started (SIGTERM by pid, up to 6 s, then SIGKILL), then
# whatever else still runs in our namespaces (iperf3; the names are unique to
# this run), and deletes the namespaces.
teardown() {
    local pid ns i alive
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in $(seq 1 60); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    for ns in "${NSS[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for ns in "${NSS[@]}"; do
        for i in $(seq 1 50); do
            ip netns del "$ns" 2>/dev/null || true
            [ -e "/run/netns/$ns" ] || break
            sleep 0.1
        done
    done
    NSS=()
}

on_exit() {
    local rc=$?
    set +e
    teardown
    if [ "$KEEP" = 1 ]; then
        log "scratch directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites and the tandem binary ---------------------------------------

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin
for t in ip iperf3 jq ss sysctl timeout; do
    command -v "$t" >/dev/null || die "needs $t"
done
CHARON=${CHARON:-}
if [ -z "$CHARON" ]; then
    for c in /usr/sbin/charon-systemd /usr/lib/ipsec/charon; do
        [ -x "$c" ] && { CHARON=$c; break; }
    done
fi
need_strongswan() {
    [ -n "$CHARON" ] && command -v swanctl >/dev/null &&
        [ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] && [ -e /dev/net/tun ]
}

need_tandem=0
case " $CASES " in *" G "*|*" T "*|*" C "*) need_tandem=1 ;; esac
case " $CASES " in *" C "*) command -v ethtool >/dev/null || die "case C needs ethtool" ;; esac
if [ "$need_tandem" = 1 ]; then
    if [ -z "${TANDEM_BIN:-}" ]; then
        log "building tandem (cargo build --release)"
        (cd "$ROOT" && cargo build --release --bin tandem >&2)
        TANDEM_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/tandem
    fi
    [ -x "$TANDEM_BIN" ] || die "no tandem binary at $TANDEM_BIN"
    TANDEM_BIN=$(readlink -f "$TANDEM_BIN")
fi

mkdir -p "$OUT"
PSK=0x$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')

# --- namespaces ----------------------------------------------------------------

ns() { echo "$PFX-$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

ns_add() {
    local name
    name=$(ns "$1")
    ip netns add "$name"
    NSS+=("$name")
    ip -n "$name" link set lo up
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

veth() { # veth NS_A IF_A NS_B IF_B
    ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$3")" link set "$4" up
}

forwarding() {
    nsx "$1" sysctl -qw net.ipv4.ip_forward=1
    nsx "$1" sh -c 'for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > "$f"; done'
}

# topo_up [nat]: client - gateway - server (tests/netns Topology); with "nat",
# client 10.0.0.10/24 - nat (masquerades out of 192.0.2.20/24) - gateway - server.
topo_up() {
    local nat=${1:-}
    ns_add client
    [ "$nat" = nat ] && ns_add nat
    ns_add gw
    ns_add server
    veth gw int0 server eth0
    ip -n "$(ns gw)" addr add "$GW_INT/24" dev int0
    ip -n "$(ns server)" addr add "$SERVER/24" dev eth0
    ip -n "$(ns server)" route add default via "$GW_INT"
    if [ "$nat" = nat ]; then
        veth client eth0 nat int0
        veth nat ext0 gw ext0
        ip -n "$(ns client)" addr add "$NAT_CLIENT/24" dev eth0
        ip -n "$(ns client)" route add default via "$NAT_INSIDE"
        ip -n "$(ns nat)" addr add "$NAT_INSIDE/24" dev int0
        ip -n "$(ns nat)" addr add "$NAT_OUTSIDE/24" dev ext0
        forwarding nat
        if command -v iptables >/dev/null; then
            nsx nat iptables -w 5 -t nat -A POSTROUTING -o ext0 -j MASQUERADE
        else
            printf '%s\n' 'add table ip bnat' \
                'add chain ip bnat post { type nat hook postrouting priority srcnat; }' \
                'add rule ip bnat post oifname "ext0" masquerade' >"$WORK/nat.nft"
            nsx nat nft -f "$WORK/nat.nft"
        fi
    else
        veth client eth0 gw ext0
        ip -n "$(ns client)" addr add "$CLIENT/24" dev eth0
    fi
    ip -n "$(ns gw)" addr add "$GW_EXT/24" dev ext0
    forwarding gw
}

# spawn NS LOG cmd...: starts a long-running command in a namespace; its pid
# (`ip netns exec` execs the command, so $! is the daemon itself) goes to PIDS
# and to the variable SPAWNED.
SPAWNED=
spawn() {
    local n=$1 logf=$2; shift 2
    ip netns exec "$(ns "$n")" "$@" </dev/null >"$logf" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# wait_until SECONDS WHAT cmd...: polls cmd every 0.2 s; fails after SECONDS.
wait_until() {
    local limit=$1 what=$2 start=$SECONDS; shift 2
    until "$@" >/dev/null 2>&1; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            log "timed out after ${limit}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# --- strongSwan (self-contained, as tests/netns/strongswan.rs) ---------------

# ss_start NS NAME: a charon with kernel-libipsec (listed before kernel-netlink,
# which must not be critical here: its XFRM part fails on a kernel without ESP),
# its own UDP packets marked 0x42 and the table-220 rule skipping them (so
# IKE/ESP-in-UDP to a peer inside the remote TS do not loop into ipsec0), and
# allow_peer_ts. Sets SS_DIR and SS_PID.
SS_DIR= SS_PID=
ss_start() {
    local n=$1 name=$2 dir
    dir=$WORK/$CASE/ss-$name
    mkdir -p "$dir/run" "$dir/x509" "$dir/x509ca" "$dir/private"
    cat >"$dir/strongswan.conf" <<EOF
# strongswan.conf of bench/iperf.sh instance $name; self-contained (selected
# with STRONGSWAN_CONF), nothing from /etc/strongswan.d
charon {
    load = random! nonce! openssl! aes sha1 sha2 hmac gcm kdf pem pkcs1 pkcs8 x509 pubkey revocation constraints kernel-libipsec! kernel-netlink socket-default! vici!
    port = 500
    port_nat_t = 4500
    install_routes = yes
    install_virtual_ip = no
    retransmit_tries = 3
    make_before_break = yes
    check_current_path = no
    plugins {
        vici {
            socket = unix://$dir/charon.vici
        }
        kernel-libipsec {
            allow_peer_ts = yes
        }
        kernel-netlink {
            receive_buffer_size = 8388608
            fwmark = !0x42
        }
        socket-default {
            use_ipv6 = no
            fwmark = 0x42
        }
    }
    filelog {
        bench {
            path = $dir/charon.log
            time_format = %H:%M:%S
            ike_name = yes
            append = yes
            default = 1
            ike = 1
        }
    }
    syslog {
        daemon {
            default = -1
        }
    }
}
charon-systemd {
    journal {
        default = -1
    }
}
swanctl {
    load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints
}
EOF
    : >"$dir/charon.log"
    if [ "$(basename "$CHARON")" = charon ]; then
        # /usr/lib/ipsec/charon hard-codes /var/run/charon.pid: a private /run
        STRONGSWAN_CONF=$dir/strongswan.conf spawn "$n" "$dir/charon.out" \
            unshare -m --propagation private sh -c 'mount --bind "$0" /run && exec "$1"' "$dir/run" "$CHARON"
    else
        STRONGSWAN_CONF=$dir/strongswan.conf spawn "$n" "$dir/charon.out" "$CHARON"
    fi
    SS_DIR=$dir SS_PID=$SPAWNED
    wait_until 10 "charon $name" swanctl_in "$dir" --stats || {
        cat "$dir/charon.out" "$dir/charon.log" >&2
        return 1
    }
}

# swanctl_in DIR COMMAND args...: swanctl against the instance in DIR (options
# belong to the command, so --uri comes after it).
swanctl_in() {
    local dir=$1 cmd=$2; shift 2
    SWANCTL_DIR=$dir STRONGSWAN_CONF=$dir/strongswan.conf \
        timeout 40 swanctl "$cmd" --uri "unix://$dir/charon.vici" "$@"
}

ss_load() { # ss_load DIR (writes nothing: DIR/swanctl.conf must exist)
    chmod 600 "$1/swanctl.conf"
    swanctl_in "$1" --load-all --noprompt --file "$1/swanctl.conf" >"$1/load.out" 2>&1 || {
        cat "$1/load.out" >&2
        return 1
    }
}

# the strongSwan road warrior (client namespace), for S and G
ss_client_conf() {
    cat >"$1/swanctl.conf" <<EOF
connections {
    bench {
        version = 2
        local_addrs = $CLIENT
        remote_addrs = $GW_EXT
        proposals = $IKE_PROPOSAL
        encap = yes
        mobike = no
        keyingtries = 1
        local {
            auth = psk
            id = $CLIENT
        }
        remote {
            auth = psk
            id = $GW_EXT
        }
        children {
            net {
                mode = tunnel
                local_ts = dynamic
                remote_ts = $INT_NET
                esp_proposals = $ESP_PROPOSAL
            }
        }
    }
}
secrets {
    ike-bench {
        secret = $PSK
    }
}
EOF
}

# the strongSwan responder (gateway namespace), for S
ss_gateway_conf() {
    cat >"$1/swanctl.conf" <<EOF
connections {
    bench {
        version = 2
        local_addrs = $GW_EXT
        remote_addrs = %any
        proposals = $IKE_PROPOSAL
        mobike = no
        local {
            auth = psk
            id = $GW_EXT
        }
        remote {
            auth = psk
        }
        children {
            net {
                mode = tunnel
                local_ts = $INT_NET
                remote_ts = dynamic
                esp_proposals = $ESP_PROPOSAL
            }
        }
    }
}
secrets {
    ike-bench {
        secret = $PSK
    }
}
EOF
}

ss_initiate() { # ss_initiate DIR
    swanctl_in "$1" --initiate --child net --timeout 20 >"$1/initiate.out" 2>&1 || {
        log "swanctl --initiate failed:"
        tail -20 "$1/initiate.out" >&2
        return 1
    }
}

# --- Tandem -------------------------------------------------------------------

# tandem_conf FILE ROLE [encap]: ROLE "responder" (the road-warrior gateway:
# 198.51.100.0/24 behind it, any peer) or "initiator" (site to site from the
# client: start_action = "start" towards the gateway). With "encap", the
# connection forces UDP encapsulation (Tandem carries ESP only in UDP).
tandem_conf() {
    local file=$1 role=$2 encap=${3:-} dir encap_line=""
    dir=$(dirname "$file")
    [ "$encap" = encap ] && encap_line='encap = true'
    if [ "$role" = responder ]; then
        cat >"$file" <<EOF
[[connections]]
name = "rw"
local_addrs = ["$GW_EXT"]
remote_addrs = ["%any"]
proposals = ["$IKE_PROPOSAL"]
$encap_line

[connections.local]
auth = "psk"
id = "$GW_EXT"

[connections.remote]
auth = "psk"

[[connections.children]]
name = "net"
local_ts = ["$INT_NET"]
remote_ts = ["dynamic"]
esp_proposals = ["$ESP_PROPOSAL"]
EOF
    else
        cat >"$file" <<EOF
[[connections]]
name = "site"
local_addrs = ["$T_CLIENT_ADDR"]
remote_addrs = ["$GW_EXT"]
proposals = ["$IKE_PROPOSAL"]
$encap_line

[connections.local]
auth = "psk"
id = "$T_CLIENT_ADDR"

[connections.remote]
auth = "psk"
id = "$GW_EXT"

[[connections.children]]
name = "net"
local_ts = ["dynamic"]
remote_ts = ["$INT_NET"]
esp_proposals = ["$ESP_PROPOSAL"]
start_action = "start"
EOF
    fi
    cat >>"$file" <<EOF

[[secrets.ike]]
secret = "$PSK"

[dataplane]
tun_name = "tandem0"
mtu = 1400

[control]
socket = "$dir/tandem.sock"

[log]
level = "info"
EOF
    chmod 600 "$file"
}

tandem_check() { # tandem_check FILE: `tandem check`, output kept next to it
    "$TANDEM_BIN" check -c "$1" >"$1.check" 2>&1 || {
        log "tandem check refused $1:"
        cat "$1.check" >&2
        return 1
    }
}

# tandem_start NS FILE: `tandem run -c FILE`; sets TANDEM_PID once its data
# path is up.
TANDEM_PID=
tandem_start() {
    local n=$1 file=$2 logf
    logf=$(dirname "$file")/tandem.log
    spawn "$n" "$logf" "$TANDEM_BIN" run -c "$file"
    TANDEM_PID=$SPAWNED
    wait_until "$UP_TIMEOUT" "tandem's data path in $n" grep -q "data path up" "$logf" &&
        kill -0 "$TANDEM_PID" 2>/dev/null || {
        tail -30 "$logf" >&2
        return 1
    }
}

tandem_sas() { # tandem_sas FILE: `tandem sas` of the instance configured in FILE
    "$TANDEM_BIN" sas --socket "$(dirname "$1")/tandem.sock" "${@:2}"
}

# --- measuring ----------------------------------------------------------------

ping_ok() { nsx client ping -n -q -c 1 -W 1 "$SERVER"; }

wait_tunnel() { # the client reaches the server (only the tunnel routes there)
    wait_until "$UP_TIMEOUT" "ping $SERVER through the tunnel" ping_ok
}

# machine: "total busy" jiffies over all CPUs
stat_total() { awk '/^cpu /{t=0; for(i=2;i<=NF;i++) t+=$i; print t, t-$5-$6}' /proc/stat; }
pid_ticks() { # pid_ticks PID: utime+stime (all threads) or "-"
    [ -r "/proc/$1/stat" ] && sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12+$13}' || echo -
}
# "pid ticks" of every user process outside our namespaces (kernel threads left
# out: softirq work is usually ours). Ticks include the reaped children's
# (cutime + cstime), so compiler runs that start and end during a transfer
# show up in their parent (make, cargo) too.
foreign_snap() {
    local ns ours=" ${EXCLUDE_PIDS:-} "
    for ns in "${NSS[@]}"; do ours+="$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ' || true)"; done
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v ours="$ours " -v me=$$ '{
        pid=$1; sub(/^.*\) /, "");
        if (int($7/2097152)%2) next;                 # PF_KTHREAD
        if (index(ours, " " pid " ") || pid==me) next;
        print pid, $12+$13+$14+$15 }'
}
foreign_pct() { # foreign_pct BEFORE_FILE AFTER_FILE SECONDS: % of one CPU
    # a process that appeared during the transfer counts with all its time
    awk -v hz="$HZ" -v s="$3" 'NR==FNR{a[$1]=$2; next} {d+=$2-(($1 in a)?a[$1]:0)} END{printf "%.0f", d/hz/s*100}' "$1" "$2"
}
threads_snap() { # threads_snap PID: "tid comm ticks" per thread
    local t
    for t in /proc/"$1"/task/*; do
        [ -r "$t/stat" ] && awk '{c=$0; sub(/^[^(]*\(/, "", c); sub(/\).*$/, "", c); s=$0; sub(/^.*\) /, "", s);
            split(s, f, " "); gsub(/ /, "_", c); print $1, c, f[12]+f[13]}' "$t/stat"
    done 2>/dev/null || true
}

wait_quiet() {
    local start=$SECONDS t0 b0 t1 b1 busy
    while :; do
        read -r t0 b0 < <(stat_total); sleep 2; read -r t1 b1 < <(stat_total)
        busy=$(awk -v a="$t0" -v b="$b0" -v c="$t1" -v d="$b1" 'BEGIN{printf "%.0f", (d-b)/(c-a)*100}')
        [ "$busy" -lt "$QUIET_PCT" ] && return 0
        if [ $((SECONDS - start)) -ge "$WAIT_QUIET" ]; then
            log "machine still ${busy}% busy after ${WAIT_QUIET}s, measuring anyway"
            return 0
        fi
    done
}

# run_iperf STREAMS REP: one transfer client -> server, with CPU figures.
# Appends a row to $OUT/runs.tsv.
run_iperf() {
    local p=$1 rep=$2 attempt base json t0 b0 t1 b1 e0 e1 c0 c1 g0 g1 h0 h1 srv gbps fpct busy ccpu gcpu hcpu
    local cl="-\t-\t-\t-\t-"
    local perf_pids=()
    for attempt in $(seq 1 "$MAX_ATTEMPTS"); do
        wait_quiet
        base=$OUT/$CASE/p$p-rep$rep
        json=$base.json
        ip netns exec "$(ns server)" timeout $((DURATION + 40)) iperf3 -s -1 -B "$SERVER" \
            >"$base.server.log" 2>&1 &
        srv=$!
        wait_until 10 "iperf3 server" sh -c "ip netns exec $(ns server) ss -Hltn 'sport = :5201' | grep -q 5201" || true
        if [ "$PERF" = 1 ] && [ "$p" = 1 ] && [ "$rep" = 1 ] && [ "$attempt" = 1 ] && command -v perf >/dev/null; then
            local side pid
            for side in client gw gw2; do
                pid=${CPU_PID[$side]:-}
                [ -n "$pid" ] && [ "${CPU_NAME[$side]}" = tandem ] || continue
                perf record -e cpu-clock -F 2999 -g -p "$pid" -o "$OUT/$CASE/perf-$side.data" \
                    -- sleep $((DURATION > 12 ? 10 : DURATION - 2)) >"$OUT/$CASE/perf-$side.log" 2>&1 &
                perf_pids+=("$!")
            done
        fi
        EXCLUDE_PIDS="${perf_pids[*]}"
        foreign_snap >"$WORK/foreign.0"
        threads_snap "${CPU_PID[gw]:-0}" >"$WORK/thr-gw.0"; threads_snap "${CPU_PID[client]:-0}" >"$WORK/thr-client.0"
        threads_snap "${CPU_PID[gw2]:-0}" >"$WORK/thr-gw2.0"
        [ "${#CLUSTER_CONFS[@]}" -gt 0 ] && cluster_snap >"$WORK/cluster.0"
        c0=$(pid_ticks "${CPU_PID[client]:-0}"); g0=$(pid_ticks "${CPU_PID[gw]:-0}"); h0=$(pid_ticks "${CPU_PID[gw2]:-0}")
        read -r t0 b0 < <(stat_total); e0=$(date +%s.%N)
        timeout $((DURATION + 30)) ip netns exec "$(ns client)" \
            iperf3 -c "$SERVER" -t "$DURATION" -P "$p" --connect-timeout 5000 -J $([ "$REVERSE" = 1 ] && echo -R) \
            >"$json" 2>"$base.err" || true
        read -r t1 b1 < <(stat_total); e1=$(date +%s.%N)
        c1=$(pid_ticks "${CPU_PID[client]:-0}"); g1=$(pid_ticks "${CPU_PID[gw]:-0}"); h1=$(pid_ticks "${CPU_PID[gw2]:-0}")
        if [ "${#CLUSTER_CONFS[@]}" -gt 0 ]; then
            cluster_snap >"$WORK/cluster.1"
            cp "$WORK/cluster.0" "$base.cluster-before.tsv"; cp "$WORK/cluster.1" "$base.cluster-after.tsv"
            [ "$g0" != - ] && [ "$h0" != - ] && [ "$g1" != - ] && [ "$h1" != - ] &&
                cl=$(cluster_report "$WORK/cluster.0" "$WORK/cluster.1" $((g1 - g0)) $((h1 - h0)))
        fi
        threads_snap "${CPU_PID[gw]:-0}" >"$WORK/thr-gw.1"; threads_snap "${CPU_PID[client]:-0}" >"$WORK/thr-client.1"
        threads_snap "${CPU_PID[gw2]:-0}" >"$WORK/thr-gw2.1"
        foreign_snap >"$WORK/foreign.1"
        for side in client gw gw2; do
            awk -v hz="$HZ" -v s="$(awk -v a="$e0" -v b="$e1" 'BEGIN{print b-a}')" \
                'NR==FNR{a[$1]=$3; next} ($1 in a){printf "%s\t%s\t%.0f\n", $1, $2, ($3-a[$1])/hz/s*100}' \
                "$WORK/thr-$side.0" "$WORK/thr-$side.1" >"$base.threads-$side.tsv"
            [ -s "$base.threads-$side.tsv" ] || rm -f "$base.threads-$side.tsv"
        done
        local i=0
        for i in "${perf_pids[@]}"; do wait "$i" 2>/dev/null || true; done
        perf_pids=() EXCLUDE_PIDS=""
        for i in $(seq 1 50); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
        kill "$srv" 2>/dev/null || true
        wait "$srv" 2>/dev/null || true
        local secs
        secs=$(awk -v a="$e0" -v b="$e1" 'BEGIN{printf "%.3f", b-a}')
        fpct=$(foreign_pct "$WORK/foreign.0" "$WORK/foreign.1" "$secs")
        busy=$(awk -v a="$t0" -v b="$b0" -v c="$t1" -v d="$b1" 'BEGIN{printf "%.0f", (d-b)/(c-a)*100}')
        cpu_pct() { [ "$1" = - ] || [ "$2" = - ] && { echo -; return; }
            awk -v a="$1" -v b="$2" -v hz="$HZ" -v s="$secs" 'BEGIN{printf "%.0f", (b-a)/hz/s*100}'; }
        ccpu=$(cpu_pct "$c0" "$c1"); gcpu=$(cpu_pct "$g0" "$g1"); hcpu=$(cpu_pct "$h0" "$h1")
        gbps=$(jq -r 'if .error then "fail" else (.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000) end' \
            "$json" 2>/dev/null || echo fail)
        [ -n "$gbps" ] && [ "$gbps" != null ] || gbps=fail
        if [ -n "${CPU_PID[gw2]:-}" ]; then
            log "$CASE P$p rep $rep: $gbps Gbit/s; CPU client=${ccpu}% node1=${gcpu}% node2=${hcpu}%, machine ${busy}%, other processes ${fpct}% (attempt $attempt)"
            log "  serving node, standby/owner CPU, standby/owner CPU per packet, packets owner, standby: $(printf '%b' "$cl" | tr '\t' ' ')"
        else
            log "$CASE P$p rep $rep: $gbps Gbit/s; CPU ${CPU_NAME[client]:-}=${ccpu}% ${CPU_NAME[gw]:-}=${gcpu}%, machine ${busy}%, other processes ${fpct}% (attempt $attempt)"
        fi
        if [ "$fpct" -lt "$FOREIGN_MAX" ] || [ "$attempt" = "$MAX_ATTEMPTS" ]; then break; fi
        log "  disturbed by processes outside the benchmark (${fpct}% of a CPU): again"
        sleep 2
    done
    # columns: case streams rep Gbit/s cpu-client cpu-gw machine other attempt
    # cpu-gw2 serving standby/owner-cpu standby/owner-cpu-per-packet pkts-owner pkts-standby
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%b\n' "$CASE" "$p" "$rep" "$gbps" "$ccpu" "$gcpu" "$busy" "$fpct" \
        "$attempt" "${hcpu:--}" "$cl" >>"$OUT/runs.tsv"
}

declare -A CPU_PID=() CPU_NAME=()
measure() { # every STREAMS x REPS for the current case
    local rep p
    for rep in $(seq 1 "$REPS"); do
        for p in $STREAMS; do run_iperf "$p" "$rep"; done
    done
    diag
}

# the kernel's counters of every namespace at the end of a case (fresh
# namespaces, so they cover the whole case): UDP receive-buffer drops
# (Udp RcvbufErrors), TCP retransmissions, TUN/veth drops
diag() {
    local n
    for n in client nat gw gw1 gw2 sw server; do
        [ -e "/run/netns/$(ns "$n")" ] || continue
        {
            echo "# nstat -as (non-zero counters since the namespace was made)"
            nsx "$n" nstat -as 2>/dev/null || true
            echo "# ip -s link"
            ip -n "$(ns "$n")" -s link 2>/dev/null || true
        } >"$OUT/$CASE/counters-$n.txt"
    done
}

# --- the cases ------------------------------------------------------------------

NOTES=()
case_P() {
    topo_up
    ip -n "$(ns client)" route add "$INT_NET" via "$GW_EXT"
    wait_until 10 "ping $SERVER" ping_ok
    CPU_PID=() CPU_NAME=()
    measure
}

case_S() {
    need_strongswan || { log "strongSwan with kernel-libipsec is not installed"; return 1; }
    topo_up
    ss_start gw gw || return 1
    local gdir=$SS_DIR gpid=$SS_PID
    ss_gateway_conf "$gdir"; ss_load "$gdir" || return 1
    ss_start client client || return 1
    local cdir=$SS_DIR cpid=$SS_PID
    ss_client_conf "$cdir"; ss_load "$cdir" || return 1
    ss_initiate "$cdir" || return 1
    wait_tunnel || return 1
    CPU_PID=([client]=$cpid [gw]=$gpid) CPU_NAME=([client]=charon [gw]=charon)
    measure
    swanctl_in "$cdir" --list-sas >"$OUT/S/sas-client.txt" 2>&1 || true
    swanctl_in "$gdir" --list-sas >"$OUT/S/sas-gateway.txt" 2>&1 || true
}

case_G() {
    need_strongswan || { log "strongSwan with kernel-libipsec is not installed"; return 1; }
    topo_up
    local tdir=$WORK/G/tandem-gw
    mkdir -p "$tdir"
    tandem_conf "$tdir/gateway.toml" responder
    cp "$tdir/gateway.toml" "$OUT/G/gateway.toml"
    tandem_check "$tdir/gateway.toml" || return 1
    tandem_start gw "$tdir/gateway.toml" || return 1
    local gpid=$TANDEM_PID
    ss_start client client || return 1
    local cdir=$SS_DIR cpid=$SS_PID
    ss_client_conf "$cdir"; ss_load "$cdir" || return 1
    ss_initiate "$cdir" || { tail -30 "$tdir/tandem.log" >&2; return 1; }
    wait_tunnel || { tail -30 "$tdir/tandem.log" >&2; return 1; }
    CPU_PID=([client]=$cpid [gw]=$gpid) CPU_NAME=([client]=charon [gw]=tandem)
    measure
    swanctl_in "$cdir" --list-sas >"$OUT/G/sas-client.txt" 2>&1 || true
    tandem_sas "$tdir/gateway.toml" >"$OUT/G/sas-gateway.txt" 2>&1 || true
}

# T, Tandem <-> Tandem. Tandem carries ESP only in UDP (RFC 3948), so two
# Tandems must force UDP encapsulation: `encap = true` on both. T_NAT=1 (or
# T_NAT=auto when the direct run fails) instead puts a masquerading NAT between
# them, so NAT detection turns encapsulation on: the fallback for a tandem
# without `encap`. To drop the fallback, delete case_T_nat and the T_NAT lines.
case_T_direct() { # case_T_direct [nat]
    local nat=${1:-} encap=encap
    T_CLIENT_ADDR=$CLIENT
    if [ "$nat" = nat ]; then T_CLIENT_ADDR=$NAT_CLIENT; encap=""; fi
    topo_up "$nat"
    local gdir=$WORK/T/tandem-gw cdir=$WORK/T/tandem-client
    rm -rf "$gdir" "$cdir"; mkdir -p "$gdir" "$cdir"
    tandem_conf "$gdir/gateway.toml" responder $encap
    tandem_conf "$cdir/client.toml" initiator $encap
    cp "$gdir/gateway.toml" "$OUT/T/gateway.toml"; cp "$cdir/client.toml" "$OUT/T/client.toml"
    tandem_check "$gdir/gateway.toml" || return 2
    tandem_check "$cdir/client.toml" || return 2
    tandem_start gw "$gdir/gateway.toml" || return 1
    local gpid=$TANDEM_PID
    tandem_start client "$cdir/client.toml" || return 1
    local cpid=$TANDEM_PID
    wait_tunnel || {
        log "--- initiator log:"; tail -20 "$cdir/tandem.log" >&2
        log "--- responder log:"; tail -20 "$gdir/tandem.log" >&2
        return 1
    }
    CPU_PID=([client]=$cpid [gw]=$gpid) CPU_NAME=([client]=tandem [gw]=tandem)
    measure
    tandem_sas "$cdir/client.toml" >"$OUT/T/sas-client.txt" 2>&1 || true
    tandem_sas "$gdir/gateway.toml" >"$OUT/T/sas-gateway.txt" 2>&1 || true
}

case_T_nat() {
    NOTES+=("T ran through a masquerading NAT namespace (client 10.0.0.10 behind 192.0.2.20), without \`encap\`: NAT detection turned UDP encapsulation on. This was the fallback for a Tandem without a working \`encap = true\`.")
    case_T_direct nat
}

case_T() {
    if [ "$T_NAT" = 1 ]; then case_T_nat; return; fi
    local rc=0
    case_T_direct || rc=$?
    if [ "$rc" != 0 ] && [ "$T_NAT" = auto ]; then
        log "T did not come up with encap = true (rc $rc): trying the NAT fallback"
        cp "$OUT/T/gateway.toml" "$OUT/T/failed-direct-gateway.toml" 2>/dev/null || true
        cp "$WORK/T/tandem-gw/tandem.log" "$OUT/T/failed-direct-gateway.log" 2>/dev/null || true
        cp "$WORK/T/tandem-client/tandem.log" "$OUT/T/failed-direct-client.log" 2>/dev/null || true
        { grep -v $'^T\t' "$OUT/runs.tsv" || true; } >"$OUT/runs.tsv.tmp"; mv "$OUT/runs.tsv.tmp" "$OUT/runs.tsv"
        teardown
        case_T_nat
        return
    fi
    return "$rc"
}

# --- C: a Tandem initiator through a 2-node Tandem cluster ----------------------

SEGMENTS=4
node_ext() { echo "192.0.2.$((1 + $1))"; }
node_int() { echo "198.51.100.$((1 + $1))"; }

# bridge NS NAME: a bridge with STP, forward delay and multicast snooping off
# (frames to the cluster's multicast MACs flood to every port), bridged frames
# kept out of netfilter (tests/netns Netns::bridge)
bridge() {
    ip -n "$(ns "$1")" link add "$2" type bridge stp_state 0 forward_delay 0 mcast_snooping 0 mcast_querier 0
    ip -n "$(ns "$1")" link set "$2" up
    local k
    for k in iptables ip6tables arptables; do
        nsx "$1" sysctl -qw "net.bridge.bridge-nf-call-$k=0" 2>/dev/null || true
    done
}
bridge_port() { # bridge_port NS BRIDGE PORT
    ip -n "$(ns "$1")" link set "$3" master "$2"
    ip -n "$(ns "$1")" link set "$3" up
}

# topo_cluster_up: the layout of tests/netns Cluster::build with 2 nodes
topo_cluster_up() {
    local i
    ns_add sw; ns_add client; ns_add server; ns_add gw1; ns_add gw2
    bridge sw ext; bridge sw int
    veth sw client-ext client eth0; bridge_port sw ext client-ext
    veth sw server-int server eth0; bridge_port sw int server-int
    for i in 1 2; do
        veth sw "gw$i-ext" "gw$i" ext0; bridge_port sw ext "gw$i-ext"
        veth sw "gw$i-int" "gw$i" int0; bridge_port sw int "gw$i-int"
        ip -n "$(ns "gw$i")" addr add "$(node_ext $i)/24" dev ext0
        ip -n "$(ns "gw$i")" addr add "$(node_int $i)/24" dev int0
        forwarding "gw$i"
    done
    ip -n "$(ns client)" addr add "$CLIENT/24" dev eth0
    ip -n "$(ns server)" addr add "$SERVER/24" dev eth0
    ip -n "$(ns server)" route add default via "$GW_INT"
}

# cluster_offloads: a raw (AF_PACKET) socket on veth sees frames as the sender's
# stack left them. With transmit checksum offload the TCP/UDP checksum is
# unfinished (CHECKSUM_PARTIAL: only the pseudo-header sum is in place; a NIC
# would finish it), and with TSO/GSO (or GRO on the receiving veth) a "frame"
# is a TCP or UDP super-packet of up to 64 KiB. A node must complete such
# checksums and cut such super-packets (it does, from the virtio-net header
# PACKET_VNET_HDR gives it), or it would encrypt broken packets or drop
# oversized ones. C_OFFLOADS=on (default) leaves the veth defaults, as case T
# has them: the client Tandem sends UDP GSO batches, which reach the nodes as
# super-packets. C_OFFLOADS=off turns tx checksumming, TSO, GSO and GRO off on
# the client's and server's eth0 and on the nodes' ports, as
# tests/cluster_netns.rs does (for nodes without offload headers): the
# client's kernel then checksums and segments in software, and the client
# Tandem's UDP GSO send (which needs checksum offload) falls back to one
# datagram per call, so the client is the limit.
cluster_offloads() {
    [ "$C_OFFLOADS" = off ] || return 0
    local n
    for n in client:eth0 server:eth0 gw1:ext0 gw1:int0 gw2:ext0 gw2:int0; do
        nsx "${n%%:*}" ethtool -K "${n#*:}" tx off tso off gso off gro off >/dev/null
    done
}

# cluster_conf FILE I: node I of 2, the connection of tests/cluster_netns.rs
# node_config (plus `encap = true`: Tandem carries ESP only in UDP)
cluster_conf() {
    local file=$1 i=$2 dir n
    dir=$(dirname "$file")
    {
        cat <<EOF
[[connections]]
name = "rw"
local_addrs = ["$GW_EXT"]
proposals = ["$IKE_PROPOSAL"]
dpd_delay = "2s"
encap = true

[connections.local]
auth = "psk"
id = "$GW_EXT"

[connections.remote]
auth = "psk"

[[connections.children]]
name = "net"
local_ts = ["$INT_NET"]
remote_ts = ["dynamic"]
esp_proposals = ["$ESP_PROPOSAL"]

[[secrets.ike]]
secret = "$PSK"

[cluster]
node_id = $i
segment_count = $SEGMENTS
secret = "the cluster secret of bench/iperf.sh"
heartbeat_delay = "100ms"
heartbeat_timeout = "500ms"
ring_mib = $C_RING_MIB

EOF
        for n in 1 2; do printf '[[cluster.nodes]]\nid = %s\naddress = "%s"\n' "$n" "$(node_int "$n")"; done
        cat <<EOF

[cluster.external]
interface = "ext0"
vip = "$GW_EXT/24"

[cluster.internal]
interface = "int0"
vip = "$GW_INT/24"

[control]
socket = "$dir/tandem.sock"

[log]
level = "info"
EOF
    } >"$file"
    chmod 600 "$file"
}

# cluster_status FILE: `tandem status --json` of the node configured in FILE
cluster_status() { "$TANDEM_BIN" status --socket "$(dirname "$1")/tandem.sock" --json; }

# cluster_snap: one line per node: "node owned-segments decrypted encrypted
# counted verified skipped"
CLUSTER_CONFS=()
cluster_snap() {
    local i=0 f
    for f in "${CLUSTER_CONFS[@]}"; do
        i=$((i + 1))
        cluster_status "$f" 2>/dev/null | jq -r --arg n "$i" '
            [.. | objects | select(has("counters"))][0] as $c
            | ($c.counters | map({(.[0]): .[1]}) | add) as $k
            | [$n, ($c.owned | map(tostring) | join(",") | if . == "" then "-" else . end),
               $k.decrypted, $k.encrypted, $k.counted, $k.verified, $k.skipped] | @tsv' || echo "$i - 0 0 0 0 0"
    done
}

# cluster_report BEFORE AFTER CPU1 CPU2: "serving-node standby/owner-CPU
# standby/owner-CPU-per-packet packets-owner packets-standby" from two
# cluster_snap outputs and each node's CPU ticks over the transfer. A node's
# packets are those its data path handled: decrypted + encrypted on the owner,
# counted + verified + skipped on the standby (both see the same frames).
cluster_report() {
    awk -v c1="$3" -v c2="$4" '
        NR==FNR {for (k=3;k<=7;k++) b[$1,k]=$k; next}
        {d[$1]=$3-b[$1,3]; e[$1]=$4-b[$1,4]; p[$1]=0; for (k=3;k<=7;k++) p[$1]+=$k-b[$1,k]}
        END {
            cpu[1]=c1; cpu[2]=c2
            o = (d[1]+e[1] >= d[2]+e[2]) ? 1 : 2; s = 3 - o
            if (d[o]+e[o] == 0 || cpu[o] <= 0 || p[s] == 0) {print "-\t-\t-\t-\t-"; exit}
            printf "%d\t%.3f\t%.3f\t%d\t%d\n", o, cpu[s]/cpu[o], (cpu[s]/p[s])/(cpu[o]/p[o]), p[o], p[s]
        }' "$1" "$2"
}

# converged FILE...: both nodes synced and every segment owned once
converged() {
    local f
    for f in "$@"; do cluster_status "$f" || return 1; done |
        jq -s -e --argjson n "$SEGMENTS" '[.[] | [.. | objects | select(has("counters"))][0]] as $c
            | ($c | all(.synced)) and ([$c[].owned[]] | sort == [range(1; $n + 1)])'
}

case_C() {
    topo_cluster_up
    cluster_offloads
    local i dir pids=() files=()
    for i in 1 2; do
        dir=$WORK/C/node$i
        mkdir -p "$dir"
        cluster_conf "$dir/node.toml" "$i"
        cp "$dir/node.toml" "$OUT/C/node$i.toml"
        tandem_check "$dir/node.toml" || return 2
        spawn "gw$i" "$dir/tandem.log" "$TANDEM_BIN" run -c "$dir/node.toml"
        pids+=("$SPAWNED") files+=("$dir/node.toml")
    done
    CLUSTER_CONFS=("${files[@]}")
    for i in 1 2; do
        wait_until "$UP_TIMEOUT" "cluster node $i" grep -q "cluster node up" "$WORK/C/node$i/tandem.log" || {
            tail -30 "$WORK/C/node$i/tandem.log" >&2; return 1; }
    done
    wait_until "$UP_TIMEOUT" "the cluster to converge" converged "${files[@]}" || {
        tail -20 "$WORK/C/node1/tandem.log" "$WORK/C/node2/tandem.log" >&2; return 1; }
    T_CLIENT_ADDR=$CLIENT
    local cdir=$WORK/C/tandem-client
    mkdir -p "$cdir"
    tandem_conf "$cdir/client.toml" initiator encap
    cp "$cdir/client.toml" "$OUT/C/client.toml"
    tandem_check "$cdir/client.toml" || return 2
    tandem_start client "$cdir/client.toml" || return 1
    local cpid=$TANDEM_PID
    wait_tunnel || {
        log "--- initiator log:"; tail -20 "$cdir/tandem.log" >&2
        log "--- node logs:"; tail -20 "$WORK/C/node1/tandem.log" "$WORK/C/node2/tandem.log" >&2
        return 1
    }
    CPU_PID=([client]=$cpid [gw]=${pids[0]} [gw2]=${pids[1]})
    CPU_NAME=([client]=tandem [gw]=tandem [gw2]=tandem)
    measure
    for i in 1 2; do cluster_status "${files[$((i - 1))]}" >"$OUT/C/status-node$i.json" 2>&1 || true; done
    tandem_sas "$cdir/client.toml" >"$OUT/C/sas-client.txt" 2>&1 || true
    CLUSTER_CONFS=()
}

# perf_summary FILE: where a tandem process spent its time: kernel vs tandem vs
# libc, the top symbols (self time), and the system calls and softirq work
# with what runs under them (inclusive time)
perf_summary() {
    local f=$1
    rep() { perf report -i "$f" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/  */ /g; s/ - - *$//' | cut -c1-150 || true; }
    echo "## by object (self time)"
    rep --no-children --sort dso -g none | head -8 || true
    echo "## top symbols (self time)"
    rep --no-children --sort dso,symbol -g none | head -40 || true
    echo "## system calls and softirqs, including what runs under them"
    rep --children --sort symbol -g none |
        grep -E '\[k\] (__x64_sys_[a-z_0-9]+|handle_softirqs|net_rx_action|schedule|tcp_v4_rcv|ip_forward|tun_get_user|tun_do_read|udp_sendmsg|udp_recvmsg|ep_poll)$' |
        head -30 || true
}

# the cases of CASES, each once, in order
unique_cases() {
    local c seen=" "
    for c in $CASES; do
        case "$seen" in *" $c "*) continue ;; esac
        seen="$seen$c "
        echo "$c"
    done
}

# --- main -----------------------------------------------------------------------

: >"$OUT/runs.tsv"
log "results in $OUT; DURATION=${DURATION}s REPS=$REPS CASES='$CASES' STREAMS='$STREAMS'"
{
    echo "date: $(date -Is)"
    echo "host: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    echo "tandem: ${TANDEM_BIN:-} (modified $(date -r "${TANDEM_BIN:-/}" -Is 2>/dev/null || echo '?')); workspace at $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo '+local changes') when the run started"
    echo "strongSwan: $(dpkg-query -W -f '${Package} ${Version}' "$(basename "$CHARON" | sed 's/^charon$/strongswan-charon/')" 2>/dev/null || true) ($CHARON)"
    echo "iperf3: $(iperf3 --version | head -1)"
    echo "DURATION=$DURATION REPS=$REPS STREAMS='$STREAMS' REVERSE=$REVERSE IKE=$IKE_PROPOSAL ESP=$ESP_PROPOSAL"
} >"$OUT/environment.txt"

FAILED=()
for CASE in $CASES; do
    mkdir -p "$OUT/$CASE" "$WORK/$CASE"
    log "=== case $CASE"
    rc=0
    "case_$CASE" || rc=$?
    if [ "$rc" != 0 ]; then
        log "case $CASE FAILED (rc $rc); continuing with the other cases"
        FAILED+=("$CASE")
        NOTES+=("case $CASE failed to come up (see the log above and $OUT/$CASE/)")
    fi
    # keep the daemons' logs and configs
    for f in "$WORK/$CASE"/*/*.log "$WORK/$CASE"/*/*.out "$WORK/$CASE"/*/swanctl.conf "$WORK/$CASE"/*/*.check; do
        [ -e "$f" ] && cp "$f" "$OUT/$CASE/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    teardown
    if [ "$PERF" = 1 ]; then
        for side in client gw gw2; do
            [ -s "$OUT/$CASE/perf-$side.data" ] || continue
            perf_summary "$OUT/$CASE/perf-$side.data" </dev/null >"$OUT/$CASE/perf-$side.txt" 2>&1 || true
        done
    fi
done

# --- summary ----------------------------------------------------------------------

# median CASE STREAMS COLUMN (4 Gbit/s, 5 client CPU, 6 gateway CPU, 7 machine)
median() {
    awk -F'\t' -v c="$1" -v p="$2" -v k="$3" '$1==c && $2==p && $k!="fail" && $k!="-" && $4!="fail" {print $k}' "$OUT/runs.tsv" |
        sort -g | awk '{v[NR]=$1} END{if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a=="-"||b=="-"||b==0) print "-"; else printf "%.3g", a/b}'; }
fmt() { awk -v a="$1" 'BEGIN{if (a=="-") print "-"; else printf "%.2f", a}'; }

declare -A WHAT=(
    [P]="plain routing, no IPsec"
    [S]="strongSwan <-> strongSwan (kernel-libipsec both ends)"
    [G]="strongSwan client <-> Tandem gateway"
    [T]="Tandem <-> Tandem (site to site)"
    [C]="Tandem initiator -> 2-node Tandem cluster"
)
declare -A SIDES=([P]="-" [S]="charon / charon" [G]="charon / tandem" [T]="tandem / tandem" [C]="tandem / node 1")
SUM=$OUT/summary.md
{
    echo "# iperf3 through network namespaces, $(date '+%Y-%m-%d %H:%M')"
    echo
    echo "\`$(basename "$0")\` with DURATION=${DURATION}s, REPS=$REPS, TCP $([ "$REVERSE" = 1 ] && echo "server -> client (-R)" || echo "client -> server"), IKE \`$IKE_PROPOSAL\`, ESP \`$ESP_PROPOSAL\` (UDP-encapsulated)."
    echo "Medians over the repetitions. CPU: % of one CPU over the transfer (utime+stime from /proc/<pid>/stat), client side / gateway side; machine: % of all $(nproc) CPUs busy."
    echo
    echo "| case | what | 1 stream Gbit/s | 4 streams Gbit/s | vs plain (1 / 4) | processes | CPU 1 stream | CPU 4 streams | machine busy (1 / 4) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    p1=$(median P 1 4); p4=$(median P 4 4)
    for c in $(unique_cases); do
        m1=$(median "$c" 1 4); m4=$(median "$c" 4 4)
        echo "| $c | ${WHAT[$c]} | $(fmt "$m1") | $(fmt "$m4") | $(ratio "$m1" "$p1") / $(ratio "$m4" "$p4") | ${SIDES[$c]} | $(median "$c" 1 5)% / $(median "$c" 1 6)% | $(median "$c" 4 5)% / $(median "$c" 4 6)% | $(median "$c" 1 7)% / $(median "$c" 4 7)% |" |
            sed 's/-% \/ -%/-/g'
    done
    echo
    s1=$(median S 1 4); s4=$(median S 4 4); t1=$(median T 1 4); t4=$(median T 4 4); g1=$(median G 1 4); g4=$(median G 4 4)
    echo "Ratios: T / S = $(ratio "$t1" "$s1") (1 stream), $(ratio "$t4" "$s4") (4 streams); G / S = $(ratio "$g1" "$s1") / $(ratio "$g4" "$s4");"
    echo "T / P = $(ratio "$t1" "$p1") / $(ratio "$t4" "$p4")."
    echo "Targets (issue 4): T >= 5x S; moonshot T >= 0.3x P."
    if awk -F'\t' '$1=="C"{f=1} END{exit !f}' "$OUT/runs.tsv"; then
        c1=$(median C 1 4); c4=$(median C 4 4)
        echo
        echo "Cluster (C, C_OFFLOADS=$C_OFFLOADS): C / T = $(ratio "$c1" "$t1") (1 stream), $(ratio "$c4" "$t4") (4 streams)."
        echo "Per stream count, medians: CPU of the client Tandem / the serving node (owner) / the other node (standby),"
        echo "and the standby's CPU time per packet relative to the owner's (packets: decrypted + encrypted on the owner,"
        echo "counted + verified + skipped on the standby):"
        echo
        echo "| streams | Gbit/s | client CPU | owner CPU | standby CPU | standby / owner CPU | standby / owner per packet | packets owner / standby |"
        echo "|---|---|---|---|---|---|---|---|"
        for p in $STREAMS; do
            awk -F'\t' -v p="$p" '$1=="C" && $2==p && $11!="-" {
                    o = ($11==1) ? $6 : $10; s = ($11==1) ? $10 : $6
                    print $4, $5, o, s, $12, $13, $14, $15 }' "$OUT/runs.tsv" >"$WORK/c-$p.txt"
            med() { awk -v k="$1" '{print $k}' "$WORK/c-$p.txt" | sort -g |
                awk '{v[NR]=$1} END{if (NR==0) print "-"; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
            echo "| $p | $(fmt "$(med 1)") | $(med 2)% | $(med 3)% | $(med 4)% | $(med 5) | $(med 6) | $(med 7) / $(med 8) |"
        done
        echo
        echo "Targets (issue 6): C >= 0.9x T; standby CPU per packet <= 0.15x the owner's."
    fi
    echo
    echo "Every transfer (Gbit/s; CPU client/gateway %, C: node 1; machine %; other processes % of one CPU; attempts; C only: node 2 CPU %, serving node, standby/owner CPU, standby/owner CPU per packet):"
    echo
    echo '```'
    printf '%-4s %-7s %-4s %9s %9s %9s %8s %6s %4s %9s %5s %6s %6s\n' case streams rep Gbit/s cpu-cl% cpu-gw% machine% other% try \
        cpu-gw2% serve sb/own sb/own/pkt
    awk -F'\t' '{printf "%-4s %-7s %-4s %9s %9s %9s %8s %6s %4s %9s %5s %6s %6s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13}' "$OUT/runs.tsv"
    echo '```'
    if [ "${#NOTES[@]}" -gt 0 ]; then
        echo
        for n in "${NOTES[@]}"; do echo "- $n"; done
    fi
} >"$SUM"
echo
cat "$SUM"
log "written: $SUM"
[ "${#FAILED[@]}" = 0 ] || { log "failed cases: ${FAILED[*]}"; exit 1; }
