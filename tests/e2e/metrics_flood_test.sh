#!/usr/bin/env bash
# The metrics listener never takes the daemon down: the real binary, limited
# to 1024 file descriptors as under systemd, is flooded on its /metrics port
# with (a) a POST whose chunk extension never ends, (b) header lines that never
# end, (c) 1,000 idle connections and (d) valid scrapes without pause, one
# after the other. Throughout, a
# customer's windows keep committing, /healthz answers a well-behaved client
# within its timeout, and the daemon neither crashes nor grows past 64 MiB.
# Then (e) a daemon with 3,000 customers and full per-customer detail, whose
# /metrics is megabytes, meets 64 clients that ask for it and never read:
# the answers they leave unread share renders (observability.md), so the
# daemon holds a few renders, not one per client.
#   METRICS_FLOOD=path (and lib.sh's variables) bash metrics_flood_test.sh
source "$(dirname "$0")/lib.sh"
: "${METRICS_FLOOD:?METRICS_FLOOD must name the metrics-flood binary}"
e2e_init metrics_flood

max_connections=64
flood_seconds=8
start_fake fake --customers M1
port=$(free_port)
write_config "$work/config.yaml" "M1" "metrics:
  listen: 127.0.0.1:$port
  max_connections: $max_connections
  request_timeout: 10s"
# ulimit in the shell that becomes the daemon: the limit systemd gives a service.
bash -c 'ulimit -n 1024 && exec "$0" run -c "$1"' "$COMEBACK_SYNC" "$work/config.yaml" >"$work/run.log" 2>&1 &
daemon=$!
e2e_pids+=("$daemon")
wait_for 60 "M1's first windows complete" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M1' AND status = 'complete'"
[[ "$(awk '/^Max open files/ { print $4 }' "/proc/$daemon/limits")" == 1024 ]] ||
    fail "the daemon does not run with 1024 file descriptors: $(grep 'open files' "/proc/$daemon/limits")"

open_fds() { find "/proc/$daemon/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# The well-behaved client: curl with a 10 s timeout, as a load balancer's
# check, which tries again once when its connection is closed unanswered: one
# whose request had not reached the socket when the listener made room (curl
# descheduled between its connect and its request, amid a burst of newer idle
# connections) looks idle and may be closed (operations.md).
healthz() {
    local code
    code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>&1 || true)
    if [[ $code == *"Empty reply"* || $code == *"reset by peer"* ]]; then
        code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>&1 || true)
    fi
    echo "$code"
}
metric() {  # metric SERIES: its value from /metrics, 0 when absent
    curl -sS --max-time 10 "http://127.0.0.1:$port/metrics" |
        awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'
}
baseline_fds=$(open_fds)
note "the daemon holds $baseline_fds file descriptors before the floods"

# flood MODE [ARG]: runs one flood for flood_seconds, checking throughout.
flood() {
    local mode=$1 arg=${2:-} mark i code most_fds=0 fds
    mark=$(sql "SELECT now()")
    "$METRICS_FLOOD" "$port" "$mode" $arg >"$work/flood-$mode.out" 2>"$work/flood-$mode.log" &
    local flooder=$!
    e2e_pids+=("$flooder")
    for ((i = 0; i < flood_seconds; i++)); do
        sleep 1
        kill -0 "$daemon" 2>/dev/null || fail "the daemon died during the $mode flood"
        code=$(healthz)
        [[ $code == 200 ]] || fail "/healthz answered '$code' to a well-behaved client during the $mode flood"
        fds=$(open_fds)
        ((fds > most_fds)) && most_fds=$fds
    done
    # The sync went on: windows committed while the flood ran.
    wait_for 60 "windows committing during the $mode flood" \
        "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M1' AND fetched_at > '$mark'"
    kill -0 "$flooder" 2>/dev/null || fail "the $mode flooder exited early: $(cat "$work/flood-$mode.log")"
    kill -TERM "$flooder"
    wait "$flooder" || fail "the $mode flooder failed: $(cat "$work/flood-$mode.log")"
    echo "ok: $mode: /healthz answered 200 every second, windows kept committing," \
         "at most $most_fds descriptors open; $(cat "$work/flood-$mode.out")"
    # A listener that held every connection would need them all; the cap
    # allows 8 new connections their half second beyond it (operations.md).
    ((most_fds <= baseline_fds + max_connections + 8 + 16)) ||
        fail "the daemon held $most_fds file descriptors during the $mode flood (before: $baseline_fds)"
}

# log_lines EVENT SINCE: the EVENT lines must be throttled to one per 10 s
# since SECONDS was SINCE (plus the first line and a slack of one).
log_lines() {
    local lines allowed=$(((SECONDS - $2) / 10 + 2))
    lines=$(grep -c "$1" "$work/run.log" || true)
    ((lines >= 1 && lines <= allowed)) ||
        fail "$lines $1 lines in $((SECONDS - $2)) s (at most $allowed): missing, or not rate-limited"
    echo "ok: $lines $1 lines in $((SECONDS - $2)) s"
}

note "(a) POST with a chunk extension that never ends"
floods_started=$SECONDS
flood chunk-extension
refused=$(metric 'comeback_sync_metrics_responses_total{code="413"}')
((refused > 0)) || fail "the listener answered no 413 during the chunk extension flood"

note "(b) header lines that never end"
flood header-lines
refused=$(metric 'comeback_sync_metrics_responses_total{code="431"}')
((refused > 0)) || fail "the listener answered no 431 during the header line flood"
log_lines metrics.request_refused "$floods_started"

note "(c) 1,000 idle connections"
idle_started=$SECONDS
flood idle 1000
dropped=$(metric 'comeback_sync_metrics_connections_dropped_total{reason="limit"}')
((dropped >= 1000 - max_connections)) ||
    fail "the listener closed only $dropped connections at its limit; 1,000 idle ones should cost it $((1000 - max_connections))"
echo "ok: $dropped connections closed at the limit"
log_lines metrics.connection_limit "$idle_started"

note "(d) valid scrapes without pause"
answered_before=$(metric 'comeback_sync_metrics_responses_total{code="200"}')
flood scrape 8
answered=$(( $(metric 'comeback_sync_metrics_responses_total{code="200"}') - answered_before ))
# Each answer is a whole render; a listener that served them at a trickle, or
# not at all, would be no flood.
((answered >= 1000)) || fail "the listener answered only $answered scrapes in $flood_seconds s of the scrape flood"
echo "ok: $answered scrapes answered during the scrape flood"

note "memory and exit"
peak_kib=$(memory_kib "$daemon" VmHWM)
((peak_kib < 64 * 1024)) || fail "the daemon's peak RSS was $peak_kib KiB, over 64 MiB"
echo "ok: peak RSS $peak_kib KiB"
kill -TERM "$daemon"
set +e; wait "$daemon"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM, expected 0"
echo "ok: exit 0 after SIGTERM"

note "(e) clients that ask for a large /metrics and never read"
# Customers the fake server does not know: each is refused at its first
# request and parked, and every one of them has its own series ('all').
customers=M1
for ((i = 2; i <= 3000; i++)); do customers+=" X$i"; done
port=$(free_port)
write_config "$work/large.yaml" "$customers" "metrics:
  listen: 127.0.0.1:$port
  max_connections: $max_connections
  request_timeout: 10s
  per_customer_series: all"
"$COMEBACK_SYNC" run -c "$work/large.yaml" >"$work/large.log" 2>&1 &
daemon=$!
e2e_pids+=("$daemon")
wait_for 60 "M1's first windows complete under the large configuration" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M1' AND status = 'complete' AND fetched_at > '$(sql "SELECT now()")'"
render_bytes=$(curl -sS --max-time 10 "http://127.0.0.1:$port/metrics" | wc -c)
((render_bytes > 2 * 1024 * 1024)) || fail "/metrics is $render_bytes bytes with 3,000 customers in 'all' mode; the step needs megabytes"
before_kib=$(memory_kib "$daemon" VmRSS)
note "/metrics is $render_bytes bytes; the daemon's RSS $before_kib KiB before the clients"
renders_before=$(metric comeback_sync_metrics_renders_total)
"$METRICS_FLOOD" "$port" unread "$max_connections" >"$work/flood-unread.out" 2>"$work/flood-unread.log" &
flooder=$!
e2e_pids+=("$flooder")
most_kib=0
for ((i = 0; i < flood_seconds; i++)); do
    sleep 1
    kill -0 "$daemon" 2>/dev/null || fail "the daemon died while clients left its answers unread"
    code=$(healthz)
    [[ $code == 200 ]] || fail "/healthz answered '$code' while clients left /metrics unread"
    kib=$(memory_kib "$daemon" VmRSS)
    ((kib > most_kib)) && most_kib=$kib
done
renders=$(( $(metric comeback_sync_metrics_renders_total) - renders_before ))
kill -TERM "$flooder"
wait "$flooder" || fail "the unread flooder failed: $(cat "$work/flood-unread.log")"
echo "ok: unread: $(cat "$work/flood-unread.out"); $renders renders, RSS at most $most_kib KiB"
# One render each would be the clients' count times the render; shared, a
# few renders at most (one made, one held, one being sent).
grown_kib=$((most_kib - before_kib))
limit_kib=$((8 * render_bytes / 1024 + 16 * 1024))
((grown_kib <= limit_kib)) ||
    fail "the daemon grew by $grown_kib KiB while $max_connections clients left a $render_bytes-byte /metrics unread (at most $limit_kib KiB: a few renders)"
echo "ok: the daemon grew by $grown_kib KiB (at most $limit_kib)"
kill -TERM "$daemon"
set +e; wait "$daemon"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM under the large configuration, expected 0"
echo "ok: exit 0 after SIGTERM"
