#!/usr/bin/env bash
# `run` keeps working: /metrics and /healthz answer while it works (by default
# with totals, every customer's freshness and the failing customer's own
# series), SIGHUP adds a customer and tries a parked one again, and SIGTERM
# ends it with exit 0.
source "$(dirname "$0")/lib.sh"
e2e_init run

start_fake fake --customers M1,M2,M3
metrics_port=$(free_port)
# M3's password is wrong: its windows fail, and that must show.
export E2E_WRONG_PASSWORD=not-the-password
write_config "$work/config.yaml" "M1 M3:E2E_WRONG_PASSWORD" "metrics:
  listen: 127.0.0.1:$metrics_port"
start_run run "$work/config.yaml"
daemon=$run_pid
wait_for 60 "M1 windows complete" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M1' AND status = 'complete'"

note "/metrics and /healthz"
fetch_until "http://127.0.0.1:$metrics_port/metrics" \
    '^comeback_sync_windows_total{customer="M3",result="failed"} [1-9]' 300 ||
    fail "/metrics does not name the failing M3: $(head -c 3000 <<<"$fetched")"
metrics=$fetched
grep -q '^comeback_sync_requests_total{customer="M3",outcome="credentials_rejected"} [1-9]' <<<"$metrics" ||
    fail "/metrics does not say why M3 fails: $(head -c 3000 <<<"$metrics")"
grep -q '^comeback_sync_requests_total{outcome="rows"} [1-9]' <<<"$metrics" ||
    fail "/metrics shows no successful requests in its totals: $(head -c 3000 <<<"$metrics")"
grep -q '^comeback_sync_freshness_seconds{customer="M1"}' <<<"$metrics" || fail "/metrics has no freshness for M1"
! grep -q '^comeback_sync_requests_total{customer="M1"' <<<"$metrics" ||
    fail "/metrics gives the healthy M1 series of its own by default"
grep -q '^comeback_sync_customers_in_trouble 1$' <<<"$metrics" || fail "/metrics does not count M3 in trouble"
# The request limiter's starts and waits (the operator's sign that the limits bound the pace).
started_before=$(sed -n 's/^comeback_sync_requests_started_total \([0-9]*\)$/\1/p' <<<"$metrics")
((${started_before:-0} >= 1)) || fail "/metrics counts no request starts: $(grep requests_ <<<"$metrics")"
grep -q '^comeback_sync_requests_waiting [0-9]*$' <<<"$metrics" || fail "/metrics has no requests_waiting"
grep -q '^comeback_sync_request_start_wait_seconds_total [0-9.e+-]*$' <<<"$metrics" ||
    fail "/metrics has no request_start_wait_seconds_total"
# The database pool's sessions and waits (the sign that database.pool_size bounds the pace).
sessions=$(sed -n 's/^comeback_sync_database_sessions_started_total \([0-9]*\)$/\1/p' <<<"$metrics")
((${sessions:-0} >= 1)) || fail "/metrics counts no database sessions: $(grep database_ <<<"$metrics")"
grep -q '^comeback_sync_database_sessions_waiting [0-9]*$' <<<"$metrics" || fail "/metrics has no database_sessions_waiting"
grep -q '^comeback_sync_database_session_wait_seconds_total [0-9.e+-]*$' <<<"$metrics" ||
    fail "/metrics has no database_session_wait_seconds_total"
health=$(curl -sS -w ' %{http_code}' "http://127.0.0.1:$metrics_port/healthz")
[[ "$health" == $'ok\n 200' ]] || fail "/healthz answered: $health"
echo "ok: /metrics and /healthz answer"

note "SIGHUP adds M2 and tries M3 again with its fixed password"
parked='customer.parked customer=M3\|"event":"customer.parked".*"customer":"M3"'
for ((i = 0; i < 100; i++)); do grep -q "$parked" "$work/run.log" && break; sleep 0.1; done
grep -q "$parked" "$work/run.log" || fail "M3 was not parked after its 401: $(tail -n 20 "$work/run.log")"
write_config "$work/config.yaml" "M1 M2 M3" "metrics:
  listen: 127.0.0.1:$metrics_port"
kill -HUP "$daemon"
wait_for 60 "M2 windows complete after SIGHUP" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M2' AND status = 'complete'"
# Parked for vitec.retry.auth_backoff (an hour) without the reload.
wait_for 30 "M3 windows complete after SIGHUP" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M3' AND status = 'complete'"
grep -q 'reload.done.*unparked.*1' "$work/run.log" || fail "reload.done does not say M3 was unparked"
# The client the reload made counts its starts on, into the same series.
metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics") || fail "GET /metrics failed"
started_after=$(sed -n 's/^comeback_sync_requests_started_total \([0-9]*\)$/\1/p' <<<"$metrics")
((${started_after:-0} > started_before)) ||
    fail "request starts after the reload not counted: $started_before before, ${started_after:-none} after"
kill -0 "$daemon" || fail "run exited after SIGHUP"
echo "ok: M2 synced and M3 tried again after SIGHUP"

note "a bad configuration is refused and the old one kept"
echo "this: [is not valid" >"$work/config.yaml"
kill -HUP "$daemon"
sleep 1
kill -0 "$daemon" || fail "run exited after a bad configuration"
curl -fsS "http://127.0.0.1:$metrics_port/healthz" >/dev/null || fail "/healthz stopped answering"
echo "ok: still running"

kill -TERM "$daemon"
set +e; wait "$daemon"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM, expected 0"
echo "ok: exit 0 after SIGTERM"
