#!/bin/sh
# Captures the *.save fixtures from real iptables, and checks the golden plans against real iptables.
#
#   capture.sh capture   builds each table in a scratch network namespace by running golden plans (and a few
#                        hand-written rules) and writes what iptables-save printed to <name>.save
#   capture.sh verify    rebuilds the tables, runs the install, cleanup and rollback golden plans on them, and checks
#                        that each ends where it should (same rules, counters and comment lines aside)
#
# Needs root, `ip netns` and iptables 1.8 with both the nft and legacy back ends. Each namespace is deleted on exit.
set -eu
cd "$(dirname "$0")"
mode=${1:?usage: capture.sh capture|verify}
prefix="pi-fixture-$$"
namespaces=""
failures=0

cleanup() {
    for namespace in $namespaces; do ip netns del "$namespace" 2>/dev/null || true; done
}
trap cleanup EXIT

# fresh NAME: a new empty namespace called $prefix-NAME.
fresh() {
    ip netns add "$prefix-$1"
    namespaces="$namespaces $prefix-$1"
}

# run NAME BACKEND COMMAND...: one iptables command in namespace NAME with back end BACKEND (nft or legacy).
run() {
    namespace=$1 backend=$2 binary=$3
    shift 3
    ip netns exec "$prefix-$namespace" "$binary-$backend" "$@" 2>/dev/null || {
        echo "failed in $namespace: $binary $* ($(ip netns exec "$prefix-$namespace" "$binary-$backend" "$@" 2>&1))" >&2
        exit 1
    }
}

# plan NAME BACKEND GOLDEN [LINES]: runs the first LINES (default all) commands of GOLDEN.plan.golden.
plan() {
    namespace=$1 backend=$2 golden=$3.plan.golden lines=${4:-100000}
    head -n "$lines" "$golden" | while IFS= read -r line; do
        binary=${line%% *}
        eval "set -- $line"
        shift
        run "$namespace" "$backend" "$binary" "$@"
    done
}

# save NAME BACKEND [ip6tables]: what <family>-<backend>-save -t nat prints in the namespace.
save() {
    ip netns exec "$prefix-$1" "${3:-iptables}-$2-save" -t nat 2>/dev/null
}

# rules FILE: the table without comment lines and counters, for comparison.
rules() {
    grep -v '^#' | sed 's/ \[[0-9]*:[0-9]*\]$//'
}

# expect NAME BACKEND FIXTURE: checks that the namespace's table has the rules of FIXTURE.save.
expect() {
    actual=$(save "$1" "$2" | rules)
    wanted=$(rules <"$3.save")
    if [ "$actual" = "$wanted" ]; then
        echo "ok: $1 matches $3.save"
    else
        echo "FAIL: $1 does not match $3.save:" >&2
        printf '%s\n' "$actual" | diff -u "$3.save" - >&2 || true
        failures=$((failures + 1))
    fi
}

# The tables, each built from scratch the same way in both modes.
build_full_nft() { fresh "$1"; plan "$1" nft default; }
build_partial_install() { fresh "$1"; plan "$1" nft default 4; }
build_existing_install() {
    fresh "$1"
    run "$1" nft iptables -t nat -A PREROUTING -p udp --dport 53 -j RETURN -m comment --comment 'keep "dns" rule'
    run "$1" nft iptables -t nat -A OUTPUT -p udp -j RETURN
    plan "$1" nft default
}
build_duplicated_jumps() {
    build_full_nft "$1"
    run "$1" nft iptables -t nat -I PREROUTING 1 -p udp --dport 53 -j RETURN
    run "$1" nft iptables -t nat -A PREROUTING -j PROXY_INIT_REDIRECT -m comment \
        --comment proxy-init/install-proxy-init-prerouting
    run "$1" nft iptables -t nat -A OUTPUT -j PROXY_INIT_OUTPUT
    run "$1" nft iptables -t nat -A OUTPUT -j PROXY_INIT_OUTPUT -m comment --comment 'old proxy-init "v1"'
    run "$1" nft iptables -t nat -N OTHER
    run "$1" nft iptables -t nat -A OTHER -p tcp -j PROXY_INIT_OUTPUT
    run "$1" nft iptables -t nat -A OUTPUT -j OTHER
}
# An install of redirect-listed over existing-install that stopped after its third command.
build_partial_reinstall() {
    build_existing_install "$1"
    run "$1" nft iptables -t nat -F PROXY_INIT_REDIRECT
    run "$1" nft iptables -t nat -A PROXY_INIT_REDIRECT -p tcp --match multiport --dports 4190,4191,4567,4568 \
        -j RETURN -m comment --comment proxy-init/ignore-port-4190,4191,4567,4568
    run "$1" nft iptables -t nat -A PROXY_INIT_REDIRECT -p tcp --destination-port 8080 -j REDIRECT --to-port 4143 \
        -m comment --comment proxy-init/redirect-port-8080-to-proxy-port
}
# A cleanup of existing-install that stopped after deleting the jumps and flushing PROXY_INIT_OUTPUT.
build_partial_cleanup() {
    build_existing_install "$1"
    run "$1" nft iptables -t nat -D PREROUTING -j PROXY_INIT_REDIRECT -m comment \
        --comment proxy-init/install-proxy-init-prerouting
    run "$1" nft iptables -t nat -D OUTPUT -j PROXY_INIT_OUTPUT -m comment --comment proxy-init/install-proxy-init-output
    run "$1" nft iptables -t nat -F PROXY_INIT_OUTPUT
}

case $mode in
capture)
    fresh clean
    save clean nft >clean-nft.save
    build_full_nft full-nft
    save full-nft nft >full-install-nft.save
    fresh full-legacy
    plan full-legacy legacy default
    save full-legacy legacy >full-install-legacy.save
    fresh full-ipv6
    plan full-ipv6 nft default-ipv6
    save full-ipv6 nft ip6tables >full-install-ipv6-nft.save
    build_partial_install partial-install
    save partial-install nft >partial-install-nft.save
    build_duplicated_jumps duplicated
    save duplicated nft >duplicated-jumps-nft.save
    build_existing_install existing
    save existing nft >existing-install-nft.save
    build_partial_reinstall partial-reinstall
    save partial-reinstall nft >partial-reinstall-nft.save
    build_partial_cleanup partial-cleanup
    save partial-cleanup nft >partial-cleanup-nft.save
    for example in skip-ports skip-subnets redirect-listed proxy-gid; do
        fresh "$example"
        plan "$example" nft "$example"
        save "$example" nft >"$example-nft.save"
    done
    fresh skip-subnets-ipv6
    plan skip-subnets-ipv6 nft skip-subnets-ipv6
    save skip-subnets-ipv6 nft ip6tables >skip-subnets-ipv6-nft.save
    # Every table, for the parser's skipping of other tables' sections.
    run full-nft nft iptables -A INPUT -p tcp --dport 22 -m comment --comment "filter rule" -j ACCEPT
    ip netns exec "$prefix-full-nft" iptables-nft-save 2>/dev/null >all-tables-nft.save
    ;;
verify)
    build_full_nft rerun
    plan rerun nft rerun-complete
    expect rerun nft full-install-nft
    fresh rerun-legacy
    plan rerun-legacy legacy default
    plan rerun-legacy legacy rerun-complete-legacy
    expect rerun-legacy legacy full-install-legacy
    build_partial_install partial
    plan partial nft partial-install
    expect partial nft full-install-nft
    build_full_nft cleanup
    plan cleanup nft cleanup-full
    expect cleanup nft clean-nft
    fresh cleanup-legacy
    plan cleanup-legacy legacy default
    plan cleanup-legacy legacy cleanup-full-legacy
    expect cleanup-legacy legacy clean-nft
    build_duplicated_jumps duplicated
    plan duplicated nft cleanup-duplicated-jumps
    if save duplicated nft | grep -q PROXY_INIT; then
        echo "FAIL: cleanup-duplicated-jumps left proxy-init rules" >&2
        failures=$((failures + 1))
    else
        echo "ok: cleanup-duplicated-jumps removed every proxy-init rule"
    fi
    build_partial_install rollback-install
    plan rollback-install nft rollback-partial-install
    expect rollback-install nft clean-nft
    build_partial_reinstall rollback-reinstall
    plan rollback-reinstall nft rollback-partial-reinstall
    expect rollback-reinstall nft existing-install-nft
    build_partial_cleanup rollback-cleanup
    plan rollback-cleanup nft rollback-partial-cleanup
    expect rollback-cleanup nft existing-install-nft
    [ "$failures" -eq 0 ] || { echo "$failures failures" >&2; exit 1; }
    ;;
*)
    echo "usage: capture.sh capture|verify" >&2
    exit 2
    ;;
esac
