#!/usr/bin/env bash
# `run` keeps working: /metrics and /healthz answer while it works, SIGHUP adds
# a customer, and SIGTERM ends it with exit 0.
source "$(dirname "$0")/lib.sh"
e2e_init run

start_fake fake --customers M1,M2
metrics_port=$(free_port)
write_config "$work/config.yaml" "M1" "metrics:
  listen: 127.0.0.1:$metrics_port"
start_run run "$work/config.yaml"
daemon=$run_pid
wait_for 60 "M1 windows complete" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M1' AND status = 'complete'"

note "/metrics and /healthz"
metrics=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics") || fail "GET /metrics failed"
grep -q '^comeback_sync_requests_total{customer="M1",outcome="rows"} [1-9]' <<<"$metrics" ||
    fail "/metrics shows no successful requests for M1: $(head -c 2000 <<<"$metrics")"
grep -q '^comeback_sync_freshness_seconds{customer="M1"}' <<<"$metrics" || fail "/metrics has no freshness for M1"
health=$(curl -sS -w ' %{http_code}' "http://127.0.0.1:$metrics_port/healthz")
[[ "$health" == $'ok\n 200' ]] || fail "/healthz answered: $health"
echo "ok: /metrics and /healthz answer"

note "SIGHUP adds M2"
write_config "$work/config.yaml" "M1 M2" "metrics:
  listen: 127.0.0.1:$metrics_port"
kill -HUP "$daemon"
wait_for 60 "M2 windows complete after SIGHUP" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M2' AND status = 'complete'"
kill -0 "$daemon" || fail "run exited after SIGHUP"
echo "ok: M2 synced after SIGHUP"

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
