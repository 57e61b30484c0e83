#!/usr/bin/env bash
# The proxy benchmark of `make bench` (and `make bench-proxy`), side by side in one run on loopback, for HTTP/1.1
# keep-alive and HTTP/2 (prior knowledge):
#   direct      client → nginx
#   proxy pair  client → outbound proxy ═mTLS HTTP/2═▶ inbound proxy → nginx (HTTP/1 rides HTTP/2, l5d-orig-proto)
#   single      client → one proxy (outbound, plaintext both ways, no identity) → nginx   (throughput only)
#   HAProxy     client → haproxy (nbthread 1) → nginx
# Each proxy is its own process (ProxyPair) on ONE event-loop thread, certified by the mesh's identity service
# (ProxyBenchIdentity) as linkerd-proxy is. Proxies and HAProxy are pinned to CPU 0; nginx (one process) and the load
# clients to CPU 1.
#
# Measured:
#   (a) latency at a fixed rate (RATE req/s, default 1,000), open loop, from each request's due time (HTTPLoad):
#       ROUNDS (3) rounds of SECONDS_MEASURED (5) s after 1 s of warm-up, the paths interleaved; the median of the
#       rounds' p50 and p99, the worst max, the rate achieved;
#   (b) throughput, closed loop (h2load, DURATION s after 2 s of warm-up), TP_ROUNDS (3) rounds interleaving the
#       paths: req/s, the CPU the proxy process(es) used (utime+stime from /proc), and req/s per core of proxy CPU
#       (req/s ÷ the proxies' share of a core), each the median of the rounds; the one-proxy-to-HAProxy ratio is the
#       median of the rounds' ratios (each of two runs seconds apart, so that the host's drift cancels out);
#   (c) each proxy's resident memory (VmRSS) idle after start, and its peak (VmHWM, reset per protocol) under (a)+(b).
# Bars (the issue's): the pair adds < 1 ms at p99 at 1,000 req/s; one proxy's throughput on one core ≥ ½ HAProxy's;
# RSS < 30 MB idle and < 60 MB under load. Prints a Markdown table and PASS/FAIL per bar; exits 0 either way unless
# something failed to run (BENCH_STRICT=1 makes a failed bar exit 1).
set -euo pipefail
cd "$(dirname "$0")"
RATE="${RATE:-1000}"
ROUNDS="${ROUNDS:-3}"
SECONDS_MEASURED="${SECONDS_MEASURED:-5}"
DURATION="${DURATION:-5}"
TP_ROUNDS="${TP_ROUNDS:-3}"
H1_CLIENTS="${H1_CLIENTS:-32}"
H2_CLIENTS="${H2_CLIENTS:-4}"
H2_STREAMS="${H2_STREAMS:-16}"
LIFETIME=900 # every process started here ends by itself after 15 minutes at the latest
# Every process of the benchmark runs at nice -10 when root (BENCH_NICE=0 to not), so that other work on the machine
# (builds, tests) disturbs all paths less; all paths get the same treatment.
if [ "$(id -u)" = 0 ]; then NICE="${BENCH_NICE:--10}"; else NICE=0; fi
# Prefixes that pin a command to CPU 0 or 1 at that priority; each execs the next, so `$!` is the command's pid.
cpu0=(nice -n "$NICE" taskset -c 0)
cpu1=(nice -n "$NICE" taskset -c 1)

need=()
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx-light)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Linked with a static Swift runtime, as a proxy binary ships (a container image needs no Swift libraries, and only
# the code the proxy uses is mapped: about 3.5 MB less resident memory). Its own scratch path, so that this build and
# the ordo-one benchmarks' (dynamic) one do not rebuild each other.
scratch=.build/static
build() {
    flock /tmp/swift-build.lock nice -n 10 \
        swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$1"
}
for product in ProxyPair ProxyBenchIdentity HTTPLoad; do build "$product"; done
bin="$scratch/release"

work="$(mktemp -d /tmp/proxy-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_ports() { # prints N free loopback ports
    python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}
wait_for() { # FILE PATTERN WHAT: waits up to 60 s for a line matching PATTERN
    for _ in $(seq 600); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    echo "$3 did not start:" >&2
    cat "$1" >&2
    exit 1
}
child_of() { # the process `timeout` (pid $1) started
    local child
    for _ in $(seq 100); do
        child="$(pgrep -P "$1" | head -1)" && [ -n "$child" ] && { echo "$child"; return; }
        sleep 0.05
    done
    echo "no child of $1" >&2
    exit 1
}
expect_command() { # PID NAME: fails unless process PID runs NAME
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || { echo "process $1 is not $2" >&2; exit 1; }
}
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
anon_kb() { awk '/^RssAnon:/{print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
reset_hwm() { for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done; }
cpu_ticks() { # utime+stime of the processes, in clock ticks
    local total=0 pid
    for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    echo "$total"
}
cpu1_busy_idle() { # busy and idle jiffies of CPU 1 so far
    awk '$1 == "cpu1" {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat
}
mb() { awk -v kb="$1" 'BEGIN{printf "%.1f", kb / 1024}'; }

read -r backend_h1 backend_h2 haproxy_h1 haproxy_h2 <<<"$(free_ports 4)"

# The application: nginx, one process, a tiny 200 on an HTTP/1.1 port and an h2c (prior knowledge) port.
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    http2_max_concurrent_streams 1024;
    default_type text/plain;
    server {
        listen 127.0.0.1:$backend_h1 backlog=4096;
        location / { return 200 "hello from nginx\n"; }
    }
    server {
        listen 127.0.0.1:$backend_h2 http2 backlog=4096;
        location / { return 200 "hello from nginx\n"; }
    }
}
EOF
"${cpu1[@]}" timeout "$LIFETIME" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" \
    >"$work/nginx.log" 2>&1 &
pids+=($!)
nginx_pid="$(child_of $!)"

# HAProxy on one thread: HTTP/1.1 keep-alive to the HTTP/1.1 port, h2c to the h2c port.
cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
    http-reuse always
frontend h1
    bind 127.0.0.1:$haproxy_h1
    default_backend app_h1
frontend h2
    bind 127.0.0.1:$haproxy_h2 proto h2
    default_backend app_h2
backend app_h1
    server app 127.0.0.1:$backend_h1
backend app_h2
    server app 127.0.0.1:$backend_h2 proto h2
EOF
"${cpu0[@]}" timeout "$LIFETIME" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)
haproxy_pid="$(child_of $!)"

# The identity service, then the proxies (each certifies before it listens).
mkdir -p "$work/pki"
"${cpu1[@]}" "$bin/ProxyBenchIdentity" "$work/pki" 120 web emoji >"$work/identity.log" 2>&1 &
identity_pid=$!
pids+=("$identity_pid")
wait_for "$work/identity.log" '^port ' "the identity service"
identity_port="$(awk '/^port /{print $2; exit}' "$work/identity.log")"

"${cpu0[@]}" "$bin/ProxyPair" inbound "$work/pki" "$identity_port" "$LIFETIME" "$backend_h1" "$backend_h2" \
    >"$work/inbound.log" 2>&1 &
inbound_pid=$!
pids+=("$inbound_pid")
wait_for "$work/inbound.log" '^ready' "the inbound proxy"
read -r inbound_h1 inbound_h2 <<<"$(awk '/^port /{printf "%s ", $2}' "$work/inbound.log")"

"${cpu0[@]}" "$bin/ProxyPair" outbound "$work/pki" "$identity_port" "$LIFETIME" "$inbound_h1" "$inbound_h2" \
    >"$work/outbound.log" 2>&1 &
outbound_pid=$!
pids+=("$outbound_pid")
wait_for "$work/outbound.log" '^ready' "the outbound proxy"
read -r pair_h1 pair_h2 <<<"$(awk '/^port /{printf "%s ", $2}' "$work/outbound.log")"

"${cpu0[@]}" "$bin/ProxyPair" single "$work/pki" "$LIFETIME" "$backend_h1" "$backend_h2" >"$work/single.log" 2>&1 &
single_pid=$!
pids+=("$single_pid")
wait_for "$work/single.log" '^ready' "the single proxy"
read -r single_h1 single_h2 <<<"$(awk '/^port /{printf "%s ", $2}' "$work/single.log")"

kill "$identity_pid" 2>/dev/null || true # certified; the proxies need it no more
for pid in "$outbound_pid" "$inbound_pid" "$single_pid"; do expect_command "$pid" ProxyPair; done
expect_command "$haproxy_pid" haproxy
expect_command "$nginx_pid" nginx
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$haproxy_h1/" && curl -s -o /dev/null "http://127.0.0.1:$backend_h1/" && break
    sleep 0.1
done
sleep 1
declare -A idle idle_anon
for role in outbound inbound single haproxy; do
    pid_var="${role}_pid"
    idle[$role]="$(rss_kb "${!pid_var}")"
    idle_anon[$role]="$(anon_kb "${!pid_var}")"
done

# Every path must answer 200 in both protocols before anything is measured.
for proto in h1 h2; do
    for port_var in backend pair single haproxy; do
        port_name="${port_var}_${proto}"
        out="$("${cpu1[@]}" "$bin/HTTPLoad" "$proto" "${!port_name}" 100 1 0)"
        if ! grep -q 'requests=100 errors=0' <<<"$out"; then
            echo "$port_var ($proto) does not answer as it should: $out" >&2
            tail -20 "$work"/*.log >&2
            exit 1
        fi
    done
done

declare -A result
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END{print v[int((NR + 1) / 2)]}'; }
latency() { # PROTO NAME PORT: one round; the report takes the median of the rounds' p50 and p99
    local out key
    out="$("${cpu1[@]}" "$bin/HTTPLoad" "$1" "$3" "$RATE" "$SECONDS_MEASURED" 1)"
    echo "  $1 $2 at $RATE req/s: $out" >&2
    for key in rate errors p50_us p99_us max_us; do
        result[$1.$2.$key]+="$(tr ' ' '\n' <<<"$out" | awk -F= -v k="$key" '$1 == k {print $2}') "
    done
}
summarize() { # PROTO NAME: the rounds' median p50 and p99, their worst max, total errors, mean rate
    local p="$1" n="$2"
    result[$p.$n.p50_us]="$(median <<<"${result[$p.$n.p50_us]}")"
    result[$p.$n.p99_us]="$(median <<<"${result[$p.$n.p99_us]}")"
    result[$p.$n.max_us]="$(tr ' ' '\n' <<<"${result[$p.$n.max_us]}" | grep . | sort -n | tail -1)"
    result[$p.$n.errors]="$(tr ' ' '\n' <<<"${result[$p.$n.errors]}" | awk '{s += $1} END{print s}')"
    result[$p.$n.rate]="$(tr ' ' '\n' <<<"${result[$p.$n.rate]}" | awk 'NF{s += $1; n++} END{printf "%.0f", s / n}')"
}
throughput() { # PROTO NAME PORT PID...: one round; summarize_throughput takes the medians
    local proto="$1" name="$2" port="$3" out before after started ended
    shift 3
    local args=(-D "$DURATION" --warm-up-time 2 -t 1)
    if [ "$proto" = h1 ]; then args+=(--h1 -c "$H1_CLIENTS" -m 1); else args+=(-c "$H2_CLIENTS" -m "$H2_STREAMS"); fi
    local cpu1_before cpu1_after
    before="$(cpu_ticks "$@")"
    cpu1_before="$(cpu1_busy_idle)"
    started="$(date +%s.%N)"
    out="$("${cpu1[@]}" timeout 60 h2load "${args[@]}" "http://127.0.0.1:$port/" 2>&1)"
    ended="$(date +%s.%N)"
    after="$(cpu_ticks "$@")"
    cpu1_after="$(cpu1_busy_idle)"
    local cpu1_busy
    cpu1_busy="$(awk -v b="$cpu1_before" -v a="$cpu1_after" 'BEGIN{
        split(b, x, " "); split(a, y, " "); busy = y[1] - x[1]; idle = y[2] - x[2]
        printf "%.0f", (busy + idle > 0 ? 100 * busy / (busy + idle) : 0)}')"
    result[$proto.$name.cpu1]+="$cpu1_busy "
    local rps failed
    rps="$(awk '/^finished in/{gsub(",", "", $4); print $4}' <<<"$out")"
    failed="$(awk '/^requests:/{f = $10 + $12} /^status codes:/{f += $5 + $7 + $9} END{print f}' <<<"$out")"
    [ -n "$rps" ] || { echo "h2load failed against $name ($proto): $out" >&2; exit 1; }
    result[$proto.$name.rps]+="$(printf '%.0f' "$rps") "
    result[$proto.$name.failed]+="${failed:-0} "
    local share="n/a" percore=""
    if [ "$#" -gt 0 ]; then
        share="$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v a="$started" -v b="$ended" \
            'BEGIN{printf "%.2f", t / hz / (b - a)}')"
        percore="$(awk -v r="$rps" -v s="$share" 'BEGIN{printf "%.0f", (s > 0 ? r / s : 0)}')"
        result[$proto.$name.cpu]+="$share "
        result[$proto.$name.percore]+="$percore "
    fi
    result[$proto.$name.last_percore]="$percore"
    echo "  $proto $name closed loop: $(printf '%.0f' "$rps") req/s, failed ${failed:-?}," \
        "proxy CPU $share of a core, CPU 1 (client, nginx) $cpu1_busy% busy" >&2
}
summarize_throughput() { # PROTO NAME: the rounds' medians, total failures
    local p="$1" n="$2" key
    for key in rps cpu percore cpu1; do
        if [ -n "${result[$p.$n.$key]:-}" ]; then result[$p.$n.$key]="$(median <<<"${result[$p.$n.$key]}")"; fi
    done
    result[$p.$n.cpu1]+="%"
    result[$p.$n.failed]="$(tr ' ' '\n' <<<"${result[$p.$n.failed]}" | awk '{s += $1} END{print s}')"
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for proto in h1 h2; do
    echo "== $proto" >&2
    reset_hwm "$outbound_pid" "$inbound_pid" "$single_pid" "$haproxy_pid"
    backend_port="backend_$proto" pair_port="pair_$proto" single_port="single_$proto" haproxy_port="haproxy_$proto"
    # Rounds interleave the paths, so that a disturbance hits them alike.
    for _ in $(seq "$ROUNDS"); do
        latency "$proto" direct "${!backend_port}"
        latency "$proto" pair "${!pair_port}"
        latency "$proto" haproxy "${!haproxy_port}"
    done
    for name in direct pair haproxy; do summarize "$proto" "$name"; done
    for _ in $(seq "$TP_ROUNDS"); do
        throughput "$proto" direct "${!backend_port}"
        throughput "$proto" pair "${!pair_port}" "$outbound_pid" "$inbound_pid"
        throughput "$proto" single "${!single_port}" "$single_pid"
        throughput "$proto" haproxy "${!haproxy_port}" "$haproxy_pid"
        result[$proto.ratio]+="$(awk -v a="${result[$proto.single.last_percore]}" \
            -v b="${result[$proto.haproxy.last_percore]}" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}') "
    done
    for name in direct pair single haproxy; do summarize_throughput "$proto" "$name"; done
    for role in outbound inbound single haproxy; do
        pid_var="${role}_pid"
        result[$proto.$role.hwm]="$(hwm_kb "${!pid_var}")"
        result[$proto.$role.anon]="$(anon_kb "${!pid_var}")"
    done
done

# The report.
ms() { awk -v us="$1" 'BEGIN{printf "%.3f", us / 1000}'; }
row() { # PROTO NAME LABEL RSS_IDLE RSS_PEAK
    local p="$1" n="$2"
    local lat="| — | — | — | — | — "
    if [ -n "${result[$p.$n.p99_us]:-}" ]; then
        lat="| $(ms "${result[$p.$n.p50_us]}") | $(ms "${result[$p.$n.p99_us]}") | $(ms "${result[$p.$n.max_us]}")"
        lat+=" | ${result[$p.$n.rate]} | ${result[$p.$n.errors]} "
    fi
    echo "| $p | $3 $lat| ${result[$p.$n.rps]} | ${result[$p.$n.cpu]:-—} | ${result[$p.$n.percore]:-—} |" \
        "${result[$p.$n.cpu1]} | $4 | $5 |"
}
echo
echo "### Proxy benchmark ($(nproc) CPUs, loopback; proxies and HAProxy on CPU 0, nginx and clients on CPU 1)"
echo
echo "Load average before the run: $load_before (other work on the machine skews every number; run it idle)."
echo
echo "Latency: open loop at $RATE req/s, $ROUNDS rounds of ${SECONDS_MEASURED} s (after 1 s of warm-up) interleaving the" \
    "paths, median of the rounds' p50 and p99, worst max (HTTPLoad; HTTP/1.1 16 keep-alive connections, HTTP/2 one" \
    "connection). Throughput: closed loop, h2load for $DURATION s (HTTP/1.1 $H1_CLIENTS connections; HTTP/2" \
    "$H2_CLIENTS connections × $H2_STREAMS streams), median of $TP_ROUNDS interleaved rounds. RSS in MB: idle after" \
    "start / peak during that protocol's runs (pair: outbound + inbound)."
echo
echo "| proto | path | p50 ms | p99 ms | max ms | achieved req/s | errors | closed-loop req/s | proxy CPU (cores) | req/s per proxy core | CPU 1 busy | RSS idle MB | RSS peak MB |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for p in h1 h2; do
    row "$p" direct "direct" "—" "—"
    row "$p" pair "proxy pair (mTLS)" "$(mb "${idle[outbound]}") + $(mb "${idle[inbound]}")" \
        "$(mb "${result[$p.outbound.hwm]}") + $(mb "${result[$p.inbound.hwm]}")"
    row "$p" single "one proxy (plaintext)" "$(mb "${idle[single]}")" "$(mb "${result[$p.single.hwm]}")"
    row "$p" haproxy "HAProxy" "$(mb "${idle[haproxy]}")" "$(mb "${result[$p.haproxy.hwm]}")"
done
echo
failed=0
verdict() { # CONDITION(0/1) TEXT...
    local ok="$1"
    shift
    if [ "$ok" = 1 ]; then echo "- PASS: $*"; else echo "- FAIL: $*"; failed=1; fi
}
for p in h1 h2; do
    added=$((result[$p.pair.p99_us] - result[$p.direct.p99_us]))
    verdict "$([ "$added" -lt 1000 ] && echo 1 || echo 0)" \
        "$p: the proxy pair adds $(ms "$added") ms at p99 at $RATE req/s (bar: < 1 ms)"
done
for p in h1 h2; do
    ratio="$(median <<<"${result[$p.ratio]}")"
    verdict "$(awk -v r="$ratio" 'BEGIN{print (r >= 0.5 ? 1 : 0)}')" \
        "$p: one proxy on one core does ${result[$p.single.percore]} req/s per core against HAProxy's" \
        "${result[$p.haproxy.percore]}: $(printf '%.2f' "$ratio") × (the median of the rounds' ratios:" \
        "$(sed 's/ *$//' <<<"${result[$p.ratio]}"); bar: ≥ 0.5; measured ${result[$p.single.rps]} vs" \
        "${result[$p.haproxy.rps]} req/s)"
done
for role in outbound inbound single; do
    verdict "$([ "${idle[$role]}" -lt $((30 * 1024)) ] && echo 1 || echo 0)" \
        "$role proxy idle RSS $(mb "${idle[$role]}") MB, of which anonymous $(mb "${idle_anon[$role]}") MB (bar: < 30 MB)"
    peak="$(printf '%s\n' "${result[h1.$role.hwm]}" "${result[h2.$role.hwm]}" | sort -n | tail -1)"
    verdict "$([ "$peak" -lt $((60 * 1024)) ] && echo 1 || echo 0)" \
        "$role proxy peak RSS under load $(mb "$peak") MB; anonymous after the h1 and h2 runs" \
        "$(mb "${result[h1.$role.anon]}") and $(mb "${result[h2.$role.anon]}") MB (bar: < 60 MB)"
done
if [ "$failed" = 1 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then exit 1; fi
