#!/usr/bin/env bash
# The fake server's abilities for the benchmarks, through the real executable
# and curl: network latency on a timer per request, a bandwidth cap per
# connection, the body cache, customer lists from a file.
#   bash tests/fake_vitec/server_test.sh path/to/fake-vitec
# Durations are checked only from below (what a timer guarantees), never
# against an upper bound a busy machine could break.
set -euo pipefail

fake_bin=${1:?usage: server_test.sh FAKE_VITEC}
work=$(mktemp -d /tmp/comeback-fake-server-test.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "--- $*"; }

# start NAME ARGS...: starts a fake server; sets url. Fails when it does not listen.
start() {
    local name=$1 tries
    shift
    "$fake_bin" --port-file "$work/$name.port" --default-password pw "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for ((tries = 0; tries < 200; tries++)); do
        [[ -s $work/$name.port ]] && break
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/$name.log" >&2; fail "fake-vitec $name exited"; }
        sleep 0.05
    done
    [[ -s $work/$name.port ]] || fail "fake-vitec $name wrote no port file"
    url="http://127.0.0.1:$(cat "$work/$name.port")"
}
# refuses OPTION ARGS...: fake-vitec ARGS exits 2 with a message naming OPTION.
refuses() {
    local option=$1 status=0
    shift
    "$fake_bin" --port-file "$work/never.port" "$@" >"$work/refused.log" 2>&1 || status=$?
    ((status == 2)) || fail "fake-vitec $* exited $status, not 2"
    grep -q -- "$option" "$work/refused.log" || fail "the refusal does not name $option: $(cat "$work/refused.log")"
}
# report URL CUSTOMER OUT [FROM TO]: one request on its own connection; prints
# "status seconds" and leaves the body in OUT.
report() {
    curl -sS --max-time 60 -u user:pw -H 'Accept: application/json' -o "$3" -w '%{http_code} %{time_total}\n' \
        "$1/Report/Task/$2/Comeback?from=${4:-2024-01-01T00:00:00}&to=${5:-2025-01-01T00:00:00}&date=Occurrence"
}
stat_of() { curl -sS --max-time 10 "$1/_control/stats" | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"; }
rows_in() { grep -oE '"id":"M1-[0-9]+"' "$1" | wc -l; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

note "--latency: every request waits on its own timer, so eight slow requests are in flight at once"
start latency --rows-per-customer 50 --latency 2000
for i in 1 2 3 4 5 6 7 8; do report "$url" M1 "$work/latency-$i.json" >"$work/latency-$i.out" & done
wait_all() { local pid; for pid in $(jobs -p); do [[ " ${pids[*]} " == *" $pid "* ]] || wait "$pid"; done; }
wait_all
for i in 1 2 3 4 5 6 7 8; do
    read -r status seconds <"$work/latency-$i.out"
    [[ $status == 200 ]] || fail "request $i answered $status"
    at_least "$seconds" 2.0 || fail "request $i took $seconds s under --latency 2000"
    (($(rows_in "$work/latency-$i.json") > 0)) || fail "request $i returned no rows"
done
# A blocking sleep would have served them one after the other.
[[ $(stat_of "$url" peak_in_flight) == 8 ]] || fail "peak_in_flight $(stat_of "$url" peak_in_flight), not 8"

note "/_control/network sets the latency of a running server, and refuses what is not a size"
start network --rows-per-customer 50
curl -sS --fail -X POST "$url/_control/network?latency=1500" >/dev/null
read -r status seconds < <(report "$url" M1 "$work/network.json")
[[ $status == 200 ]] && at_least "$seconds" 1.5 || fail "after latency=1500: $status in $seconds s"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$url/_control/network?bandwidth=fast")
[[ $code == 400 ]] || fail "bandwidth=fast answered $code, not 400"

note "--bandwidth: each connection's body is paced to the rate, each connection on its own"
# About 1 MB of body at 2 MB/s: at least half a second, less the first 64 KiB
# piece, which goes out before the first wait.
start bandwidth --rows-per-customer 3000 --bandwidth 2MB
report "$url" M1 "$work/paced-1.json" >"$work/paced-1.out" &
report "$url" M1 "$work/paced-2.json" >"$work/paced-2.out" &
wait_all
cmp -s "$work/paced-1.json" "$work/paced-2.json" || fail "the two paced bodies differ"
(($(rows_in "$work/paced-1.json") == 3000)) || fail "the paced body has $(rows_in "$work/paced-1.json") rows, not 3000"
bytes=$(stat -c %s "$work/paced-1.json")
least=$(awk -v b="$bytes" 'BEGIN { printf "%.3f", (b - 65536) / 2e6 }')
at_least "$least" 0.3 || fail "the body ($bytes bytes) is too small to show pacing"
for i in 1 2; do
    read -r status seconds <"$work/paced-$i.out"
    [[ $status == 200 ]] || fail "paced request $i answered $status"
    at_least "$seconds" "$least" || fail "paced request $i took $seconds s, less than $least s for $bytes bytes at 2 MB/s"
done
[[ $(stat_of "$url" peak_in_flight) == 2 ]] || fail "the paced requests were not in flight together"
refuses --bandwidth --bandwidth fast

note "--cache-bodies: a repeated request is sent from memory, the same bytes, until the generation changes"
start cache --rows-per-customer 500 --cache-bodies 10MiB
report "$url" M1 "$work/cache-1.json" >/dev/null
report "$url" M1 "$work/cache-2.json" >/dev/null
cmp -s "$work/cache-1.json" "$work/cache-2.json" || fail "the cached body differs from the generated one"
[[ $(stat_of "$url" cache_hits) == 1 ]] || fail "cache_hits $(stat_of "$url" cache_hits), not 1"
[[ $(stat_of "$url" cache_bytes) == $(stat -c %s "$work/cache-1.json") ]] || fail "cache_bytes is not the body's size"
report "$url" M1 "$work/cache-march.json" 2024-03-01T00:00:00 2024-04-01T00:00:00 >/dev/null
(($(rows_in "$work/cache-march.json") < $(rows_in "$work/cache-1.json"))) || fail "another window was answered from the cache"
curl -sS --fail -X POST "$url/_control/generation?value=1" >/dev/null
[[ $(stat_of "$url" cache_bytes) == 0 ]] || fail "a new generation kept the cache"
report "$url" M1 "$work/cache-g1.json" >/dev/null
cmp -s "$work/cache-1.json" "$work/cache-g1.json" && fail "generation 1 was answered with generation 0's body"
[[ $(stat_of "$url" cache_hits) == 1 ]] || fail "generation 1 was answered from the cache"

note "--cache-bodies keeps no body larger than what is left of it"
start small-cache --rows-per-customer 500 --cache-bodies 1KiB
report "$url" M1 "$work/small-1.json" >/dev/null
report "$url" M1 "$work/small-2.json" >/dev/null
cmp -s "$work/small-1.json" "$work/small-2.json" || fail "the two bodies differ"
[[ $(stat_of "$url" cache_hits) == 0 && $(stat_of "$url" cache_bytes) == 0 ]] || fail "a body larger than the cache was kept"
refuses --cache-bodies --cache-bodies 1Gb

note "--customers-file: the customers it lists, one a line, beside --customers"
printf 'F00001\n  F00002  \n\nF00003\n' >"$work/customers"
start file --customers-file "$work/customers"
for id in F00001 F00002 F00003; do
    read -r status _ < <(report "$url" "$id" "$work/file.json")
    [[ $status == 200 ]] || fail "customer $id of the file answered $status"
done
read -r status _ < <(report "$url" M1 "$work/file.json")
[[ $status == 403 ]] || fail "M1 answered $status: the file must replace the default list"
start both --customers M7 --customers-file "$work/customers"
for id in M7 F00003; do
    read -r status _ < <(report "$url" "$id" "$work/both.json")
    [[ $status == 200 ]] || fail "customer $id answered $status with --customers and --customers-file"
done
refuses --customers-file --customers-file "$work/missing"

note "a generation change while a body is sent: the body ends whole, from the generation it began with"
# glibc fills freed memory with the perturb byte: a body still read from the
# data set the change replaced comes out as garbage, or the server crashes.
MALLOC_PERTURB_=165 start generation --rows-per-customer 1000 --bandwidth 200kB
read -r status _ < <(report "$url" M1 "$work/generation-0.json")
[[ $status == 200 ]] || fail "generation 0 answered $status"
report "$url" M1 "$work/generation-mid.json" >"$work/generation-mid.out" &
mid=$!
sleep 0.5
curl -sS --fail --max-time 10 -X POST "$url/_control/generation?value=1" >/dev/null ||
    fail "the generation did not change mid-body"
wait "$mid" || fail "the request whose generation changed mid-body failed: $(cat "$work/generation-mid.out")"
read -r status _ <"$work/generation-mid.out"
[[ $status == 200 ]] || fail "the request whose generation changed mid-body answered $status"
cmp -s "$work/generation-0.json" "$work/generation-mid.json" ||
    fail "the body whose generation changed mid-send differs from generation 0's ($(wc -c <"$work/generation-mid.json") of $(wc -c <"$work/generation-0.json") bytes)"
read -r status _ < <(report "$url" M1 "$work/generation-1.json")
[[ $status == 200 ]] || fail "generation 1 answered $status: the server did not survive the change"
! cmp -s "$work/generation-0.json" "$work/generation-1.json" || fail "generation 1 sent generation 0's body"
echo "ok"
