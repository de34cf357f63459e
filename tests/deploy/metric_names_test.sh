#!/usr/bin/env bash
# Every metric the alerting rules and the Grafana dashboard select is one the
# daemon serves: the real comeback-sync run against the fake Vitec server and
# the test PostgreSQL, scraped once it has committed a window. No list of
# metric names is kept here; a histogram serves NAME_bucket, NAME_sum and
# NAME_count.
#   COMEBACK_SYNC=... FAKE_VITEC=... PROMQL_NAMES=... metric_names_test.sh SOURCE_DIR
source "$(dirname "$0")/../e2e/lib.sh"
: "${PROMQL_NAMES:?PROMQL_NAMES must name the promql-metric-names tool}"
source_dir=$1
rules=$source_dir/deploy/prometheus/comeback-sync.rules.yml
dashboard=$source_dir/deploy/grafana/comeback-sync.json
e2e_init metric_names

start_fake fake --customers M1
port=$(free_port)
write_config "$work/config.yaml" "M1" "metrics:
  listen: 127.0.0.1:$port"
start_run run "$work/config.yaml"

note "scrape a daemon that has committed a window"
for ((i = 0; i < 300; i++)); do
    metrics=$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null || true)
    grep -q '^comeback_sync_freshness_seconds{customer="M1"}' <<<"$metrics" && break
    kill -0 "$run_pid" 2>/dev/null || fail "comeback-sync run exited"
    sleep 0.2
done
grep -q '^comeback_sync_freshness_seconds{customer="M1"}' <<<"$metrics" ||
    fail "no committed window of M1 shows in /metrics after 60s"

# Names from the samples and from the TYPE lines (so a series without samples
# yet still counts), a histogram or summary with its series' suffixes.
awk '
    $1 == "#" && $2 == "TYPE" {
        if ($4 == "histogram") { print $3 "_bucket"; print $3 "_sum"; print $3 "_count" }
        else if ($4 == "summary") { print $3; print $3 "_sum"; print $3 "_count" }
        else print $3
        next
    }
    /^#/ || NF == 0 { next }
    { name = $1; sub(/\{.*/, "", name); print name }
' <<<"$metrics" | LC_ALL=C sort -u >"$work/served"
(($(wc -l <"$work/served") >= 8)) || fail "/metrics served only: $(cat "$work/served")"
# Prometheus adds these to every scraped target itself.
printf '%s\n' up scrape_duration_seconds scrape_samples_scraped scrape_samples_post_metric_relabeling \
    scrape_series_added >>"$work/served"

note "names the rules and the dashboard select"
"$PROMQL_NAMES" --rules "$rules" --dashboard "$dashboard" >"$work/used" ||
    fail "promql-metric-names could not read the rules or the dashboard"
cut -f1 "$work/used" | LC_ALL=C sort -u >"$work/used-names"
grep -q '^comeback_sync_' "$work/used-names" || fail "the rules and dashboard name no comeback_sync_ metric"

status=0
while IFS=$'\t' read -r name where; do
    grep -qxF "$name" "$work/served" || { echo "unknown metric $name in $where" >&2; status=1; }
done <"$work/used"
((status == 0)) || fail "the rules or the dashboard select metrics the daemon does not serve (above); it serves: $(tr '\n' ' ' <"$work/served")"
echo "ok: $(wc -l <"$work/used-names") metric names in the rules and the dashboard, each served: $(tr '\n' ' ' <"$work/used-names")"
unused=$(LC_ALL=C comm -23 <(grep '^comeback_sync_' "$work/served" | LC_ALL=C sort -u) "$work/used-names" | tr '\n' ' ')
[[ -z "$unused" ]] || echo "served but not used (fine): $unused"
