# Rows 7 to 9 of tests/bench/run, sourced by it: a fleet of customers with a
# few comebacks each behind a slow server, as the live daemon (`run`) keeps
# them fresh. Uses the run's globals and tests/bench/lib.sh.
#
#   fleet_bench     the first cycle (production durability), the steady state
#                   after it, /metrics, then the first cycle again under the
#                   throwaway settings; adds the rows to the table

fleet_db=comeback_fleet

# ---------------------------------------------------------------- set-up
fleet_setup() {
    # The fresh windows of today in the API zone: lookback 7 days, horizon 21
    # days, 14-day windows (three of them). The data set fills exactly those, so
    # every request returns rows and history has nothing to fill.
    fleet_today=$(TZ=Europe/Stockholm date +%F)
    local today_n
    today_n=$(day_number "$fleet_today")
    plan_windows "$(day_text $((today_n - 7)))" "$(day_text $((today_n + 21)))" 14 >"$work/fleet.windows"
    fleet_windows_each=$(wc -l <"$work/fleet.windows")
    fleet_windows=$((fleet_customers * fleet_windows_each))
    # Every fresh window is re-fetched each poll_interval: the first tier
    # reaches the farthest fresh window's first day. With the default tiers
    # (within 14 days) which of them that is moved with the date, and with it
    # the steady state's re-fetches a customer's turn (two on some days, three
    # on others) and so row 8's CPU per re-fetch and its freshness.
    local first first_n
    fleet_fresh_days=1
    while read -r first _; do
        first_n=$(day_number "$first")
        first_n=$((first_n > today_n ? first_n - today_n : today_n - first_n))
        if ((first_n > fleet_fresh_days)); then fleet_fresh_days=$first_n; fi
    done <"$work/fleet.windows"
    local data_from data_to
    data_from=$(head -n1 "$work/fleet.windows" | cut -d' ' -f1)
    data_to=$(day_text $(($(day_number "$(tail -n1 "$work/fleet.windows" | cut -d' ' -f2)") - 1)))

    customer_list "$fleet_customers" F >"$work/fleet.customers"
    customer_ids_file "$work/fleet.customers" "$work/fleet.ids"
    # Every request waits fleet_latency_ms on a timer of its own.
    start_fake fleet --seed 9 --customers-file "$work/fleet.ids" --rows-per-customer "$fleet_rows" \
        --from "$data_from" --to "$data_to" --default-password "$password" --latency "$fleet_latency_ms"
    fleet_url=$fake_url fleet_fake_pid=$fake_pid
    fleet_metrics_port=$(free_port)
    cfg_concurrency=$fleet_concurrency cfg_rate=$fleet_rate cfg_timeout=60s \
        cfg_metrics="  listen: 127.0.0.1:$fleet_metrics_port" \
        write_config "$work/fleet.yaml" "$fleet_url" "dbname=$fleet_db" "$work/fleet.customers" <<YAML
window: 14d
lookback: 7d
horizon: 21d
poll_interval: $fleet_poll
history_start: $(day_text $((today_n - 7)))
freshness:
  - within: ${fleet_fresh_days}d
    every: $fleet_poll
  - within: 90d
    every: 1h
YAML
    # The documented bound (docs/operations.md, "Connection poolers"): the pool
    # (database.pool_size, as check-config says the daemon takes it), one for
    # leases, one for the database probe.
    fleet_pool_size=$("$sync_bin" check-config -c "$work/fleet.yaml" | sed -n 's/^  pool_size: //p')
    [[ $fleet_pool_size =~ ^[0-9]+$ ]] || fail "check-config printed no database.pool_size"
    fleet_connection_bound=$((fleet_pool_size + 2))
    say "   $fleet_customers customers x $fleet_rows comebacks, $fleet_windows_each fresh windows each" \
        "($data_from .. $data_to), $fleet_latency_ms ms a request"
}

# Starts `comeback-sync run -c CONFIG`, under the command in fleet_wrapper
# when set (a profiler: tests/bench/profile-fleet); sets fleet_pid.
fleet_start_daemon() {
    ${fleet_wrapper[@]+"${fleet_wrapper[@]}"} "$sync_bin" run -c "$1" >"$work/fleet-daemon.log" 2>&1 &
    fleet_pid=$!
    pids+=("$fleet_pid")
}

fleet_stop_daemon() {
    kill -TERM "$fleet_pid" 2>/dev/null || true
    wait "$fleet_pid" || say "   the daemon exited with $? on SIGTERM"
}

fleet_alive() {
    kill -0 "$fleet_pid" 2>/dev/null || { tail -n 40 "$work/fleet-daemon.log" >&2; fail "the fleet daemon exited"; }
}


# ---------------------------------------------------------------- 7. first cycle
# Starts the daemon on an empty, migrated database and waits until every
# customer's fresh windows are complete in the ledger, sampling the database
# connections. Past a deadline far beyond the goal, the small run (a test)
# fails; the full run records how far the cycle got (fc_incomplete) and goes
# on, so one slow row does not cost the others. Sets fc_s, fc_cpu_s, fc_peak_kib, fc_connections, fc_fake_cpu,
# fc_requests (what the server answered meanwhile: windows fetched first, and
# again where their interval passed before the cycle ended).
fleet_first_cycle() {
    local config=${1:-$work/fleet.yaml}
    local start done_at sample complete total customers connections fake_t0 requests_t0 deadline count_from
    fresh_database "$fleet_db" "$config"
    fake_t0=$(ticks "$fleet_fake_pid")
    requests_t0=$(fake_stat "$fleet_url" requests)
    fc_connections=0 fc_incomplete=
    # Far beyond the goal, so that today's figure is still measured.
    deadline=$(calc "$(now) + 20 * $fleet_windows / $fleet_rate + 120" 0)
    start=$(now)
    count_from=$(calc "$start + 0.9 * $fleet_windows / $fleet_rate" 2)
    fleet_start_daemon "$config"
    while :; do
        sleep 0.5
        fleet_alive
        # Counting the ledger's rows is a scan of 30,000 rows and their dead
        # versions: under the cycle's load about 60 ms of the server's CPU,
        # twice a second, taken from the cycle it measures (8 % of a core).
        # So the rows are counted only once the cycle may be near its end (9/10
        # of its floor); until then a sample counts the connections alone.
        # Counting the customers sorts 30,000 ids (three times the rows' cost),
        # so they are counted once every window is complete.
        complete=0 total=0 customers=0
        if awk "BEGIN { exit !($(now) >= $count_from) }"; then
            sample=$(sql -d "$fleet_db" -c "SELECT count(*) FILTER (WHERE status = 'complete'), count(*),
                                                   $daemon_connections_sql
                                            FROM vitec.sync_windows")
            IFS='|' read -r complete total connections <<<"$sample"
        else
            connections=$(sql -d "$fleet_db" -c "SELECT $daemon_connections_sql")
        fi
        if ((complete == total && total >= fleet_windows)); then
            customers=$(sql -d "$fleet_db" -c "SELECT count(DISTINCT customer_id COLLATE \"C\") FROM vitec.sync_windows")
        fi
        if ((connections > fc_connections)); then
            fc_connections=$connections
            # What the connections were doing when most were open, to explain a surprise.
            sql -d "$fleet_db" -c "SELECT pid, backend_start, state, left(query, 60) FROM pg_stat_activity
                                   WHERE datname = current_database() AND backend_type = 'client backend'
                                     AND pid <> pg_backend_pid() ORDER BY backend_start" \
                >"$work/fleet-connections-$fleet_durability.txt"
        fi
        if ((customers == fleet_customers && complete == total && total >= fleet_windows)); then
            done_at=$(now)
            break
        fi
        if awk "BEGIN { exit !($(now) > $deadline) }"; then
            ((small)) && fail "the fleet's first cycle did not finish: $complete of $fleet_windows windows complete"
            done_at=$(now) fc_incomplete="$complete of $fleet_windows windows complete"
            say "   the first cycle did not finish by its deadline: $fc_incomplete"
            break
        fi
    done
    fc_s=$(calc "$done_at - $start" 1)
    fc_cpu_s=$(calc "$(ticks "$fleet_pid") / $clk_tck" 2)
    fc_peak_kib=$(peak_rss_kib "$fleet_pid")
    fc_fake_cpu=$(calc "($(ticks "$fleet_fake_pid") - $fake_t0) / $clk_tck / $fc_s * 100" 0)
    fc_requests=$(($(fake_stat "$fleet_url" requests) - requests_t0))
    # The mean wait of database work for a session of the pool (/metrics).
    fc_session_wait_ms=$(curl -sS --fail --max-time 30 "http://127.0.0.1:$fleet_metrics_port/metrics" |
        mean_session_wait_ms)
    # Where a window's time went, as the ledger records it (the last load of each).
    read -r fc_fetch_ms fc_load_ms fc_load_p99_ms < <(sql -d "$fleet_db" -F ' ' -c "
        SELECT round(avg(fetch_ms)), round(avg(load_ms)),
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY load_ms)::numeric)
        FROM vitec.sync_windows WHERE status = 'complete'")
}

# ---------------------------------------------------------------- 8. steady state
# The same daemon for fleet_steady_s more seconds: its CPU per re-fetch, its
# RSS, and how long each window went without a fetch, from snapshots of the
# ledger every fleet_sample_s seconds. Sets st_* figures.
fleet_steady_state() {
    local start end daemon_t0 fake_t0 requests_t0 writes s samples rss connections
    local poll_s=$1
    writes=$(writes_mark "$fleet_db")
    # A window's tier interval (the fleet's tiers: within fleet_fresh_days
    # every poll_interval, within 90 days hourly) beside its last fetch.
    local snapshot="COPY (SELECT customer_id, first_day,
                                 CASE WHEN abs(first_day - DATE '$fleet_today') <= $fleet_fresh_days THEN $poll_s
                                      WHEN abs(first_day - DATE '$fleet_today') <= 90 THEN 3600
                                      ELSE 86400 END,
                                 extract(epoch FROM fetched_at)
                          FROM vitec.sync_windows WHERE fetched_at IS NOT NULL) TO STDOUT"
    : >"$work/fleet-snapshots.tsv"
    st_peak_rss_kib=0 st_connections=0 samples=0
    start=$(now)
    daemon_t0=$(ticks "$fleet_pid") fake_t0=$(ticks "$fleet_fake_pid")
    requests_t0=$(fake_stat "$fleet_url" requests)
    sql -d "$fleet_db" -c "$snapshot" >>"$work/fleet-snapshots.tsv"
    while awk "BEGIN { exit !($(now) < $start + $fleet_steady_s) }"; do
        sleep "$fleet_sample_s"
        fleet_alive
        sql -d "$fleet_db" -c "$snapshot" >>"$work/fleet-snapshots.tsv"
        connections=$(sql -d "$fleet_db" -c "SELECT $daemon_connections_sql")
        ((connections > st_connections)) && st_connections=$connections
        rss=$(rss_kib "$fleet_pid")
        ((rss > st_peak_rss_kib)) && st_peak_rss_kib=$rss
        samples=$((samples + 1))
    done
    end=$(now)
    st_s=$(calc "$end - $start" 1)
    st_cpu_s=$(calc "($(ticks "$fleet_pid") - $daemon_t0) / $clk_tck" 2)
    st_fake_cpu=$(calc "($(ticks "$fleet_fake_pid") - $fake_t0) / $clk_tck / $st_s * 100" 0)
    st_requests=$(($(fake_stat "$fleet_url" requests) - requests_t0))
    st_rss_kib=$(rss_kib "$fleet_pid")
    ((st_requests > 0)) || fail "no window was fetched again in $st_s s of steady state"
    st_cpu_ms=$(calc "$st_cpu_s * 1000 / $st_requests" 2)
    local written history
    writes_since "$writes" "$fleet_db"
    st_written=$written st_history=$history

    # Freshness: for each window, the gaps between the fetches the snapshots
    # saw, and the open gap at the end, each over the window's tier interval;
    # a customer's figure is its worst window. Printed: max p99 median count>1.2.
    read -r st_fresh_max st_fresh_p99 st_fresh_median st_fresh_over < <(
        awk -F'\t' -v end="$end" '
            { key = $1 SUBSEP $2; every[key] = $3; customer[key] = $1
              if (!(key in last)) { last[key] = $4; next }
              if ($4 != last[key]) { gap = ($4 - last[key]) / $3; if (gap > worst[$1]) worst[$1] = gap; last[key] = $4 } }
            END { for (key in last) { gap = (end - last[key]) / every[key]; c = customer[key]
                                      if (gap > worst[c]) worst[c] = gap }
                  for (c in worst) print worst[c] }' "$work/fleet-snapshots.tsv" |
            sort -g | awk '{ v[NR] = $1; if ($1 > 1.2) over++ }
                END { p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]; med = v[int((NR + 1) / 2)]
                      printf "%.2f %.2f %.2f %d\n", v[NR], p99, med, over }')
    st_customers_seen=$(cut -f1 "$work/fleet-snapshots.tsv" | sort -u | wc -l)
    ((st_customers_seen == fleet_customers)) ||
        fail "the steady state saw $st_customers_seen customers, not $fleet_customers"
    say "   $st_requests re-fetches in $st_s s ($samples samples): $st_cpu_ms CPU-ms each," \
        "RSS $(mib "$st_rss_kib") MiB, worst freshness ${st_fresh_max}x its interval"
}

# ---------------------------------------------------------------- 9. /metrics
# Five scrapes of the running daemon; sets mx_bytes, mx_lines and mx_ms (the median).
fleet_scrape() {
    local i
    : >"$work/fleet-scrapes.out"
    for i in 1 2 3 4 5; do
        curl -sS --fail --max-time 60 -o "$work/fleet-metrics.txt" -w '%{size_download} %{time_total}\n' \
            "http://127.0.0.1:$fleet_metrics_port/metrics" >>"$work/fleet-scrapes.out" ||
            fail "could not scrape /metrics"
    done
    mx_bytes=$(sort -n "$work/fleet-scrapes.out" | awk 'NR == 3 { print $1 }')
    mx_ms=$(sort -k2 -g "$work/fleet-scrapes.out" | awk 'NR == 3 { printf "%.1f", $2 * 1000 }')
    mx_lines=$(wc -l <"$work/fleet-metrics.txt")
}

# ---------------------------------------------------------------- 7. a database far away
# The first cycle again with every database round trip fleet_far_delay_ms
# longer each way (db-proxy), first with the pool left to its default, then
# with database.pool_size fleet_far_pool: a load holds its session for its
# round trips, so the pool, not Vitec, can set the pace. fleet_far_database FLOOR_S
fleet_far_database() {
    local floor_s=$1 proxy_port pool config label
    # It runs until its input ends: a FIFO this shell holds open, closed below.
    rm -f "$work/far-proxy.in" "$work/far-proxy.port"
    mkfifo "$work/far-proxy.in"
    "$proxy_bin" --upstream-port "$PGPORT" --port-file "$work/far-proxy.port" --delay-ms "$fleet_far_delay_ms" \
        <"$work/far-proxy.in" >"$work/far-proxy.log" 2>&1 &
    local proxy_pid=$! proxy_fd tries
    pids+=("$proxy_pid")
    exec {proxy_fd}>"$work/far-proxy.in"
    for ((tries = 0; tries < 100; tries++)); do
        [[ -s $work/far-proxy.port ]] && break
        kill -0 "$proxy_pid" 2>/dev/null || { cat "$work/far-proxy.log" >&2; fail "db-proxy exited"; }
        sleep 0.1
    done
    proxy_port=$(cat "$work/far-proxy.port")
    for pool in default "$fleet_far_pool"; do
        config="$work/fleet-far-$pool.yaml"
        sed "s|^  conninfo: .*|  conninfo: \"host=127.0.0.1 port=$proxy_port dbname=$fleet_db\"|" "$work/fleet.yaml" >"$config"
        label="the pool left to its default ($fleet_pool_size)"
        if [[ $pool != default ]]; then
            sed -i "s|^  schema: \(.*\)$|  schema: \1\n  pool_size: $pool|" "$config"
            label="\`database.pool_size: $pool\`"
        fi
        say "7. fleet: the first cycle with the database $fleet_far_delay_ms ms away each way, $label"
        fleet_first_cycle "$config"
        fleet_stop_daemon
        local figure="$fc_s s"
        [[ -n $fc_incomplete ]] && figure="not finished after $fc_s s ($fc_incomplete)"
        row 7 "| 7 | fleet, first cycle, the database $fleet_far_delay_ms ms away each way (\`db-proxy --delay-ms\`), $label | $figure (a window: fetch $fc_fetch_ms ms, load $fc_load_ms ms; database work waited $fc_session_wait_ms ms for a session, mean; $fc_connections connections) | requests / rate $floor_s s | $(calc "$fc_s / $floor_s")x the floor | (no goal; how far the database is sets the pool a fleet needs) | |"
    done
    exec {proxy_fd}>&-
    wait "$proxy_pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- the whole fleet part
fleet_bench() {
    say "7. fleet: the first cycle of $fleet_customers customers, production durability"
    fleet_setup
    fleet_durability=production
    fleet_first_cycle
    local floor_s
    floor_s=$(calc "$fleet_windows / $fleet_rate" 1)
    say "   every fresh window complete after $fc_s s (floor $floor_s s), peak RSS $(mib "$fc_peak_kib") MiB," \
        "$fc_connections connections"
    number "fleet first cycle" "$fc_s"
    local ratio
    ratio=$(calc "$fc_s / $floor_s")
    local figure="$fc_s s"
    [[ -n $fc_incomplete ]] && figure="not finished after $fc_s s ($fc_incomplete)"
    row 7 "| 7 | fleet, first cycle: $fleet_customers customers x $fleet_rows comebacks, \`window: 14d\`, \`lookback: 7d\`, \`horizon: 21d\` ($fleet_windows requests), $fleet_latency_ms ms a request, $fleet_rate requests/s, $fleet_concurrency concurrent: until every fresh window is complete | $figure | requests / rate $floor_s s | ${ratio}x the floor | <= 1.1x | $(verdict "$ratio <= 1.1") |"
    row 7 "| 7 | fleet, first cycle: peak RSS | $(mib "$fc_peak_kib") MiB | \`comeback-sync --version\` $(mib "$version_kib") MiB | $(calc "$fc_peak_kib / $version_kib")x | < 64 MiB | $(verdict "$fc_peak_kib < 65536") |"
    row 7 "| 7 | fleet, first cycle: database connections, most at once (\`pg_stat_activity\`, every 0.5 s) | $fc_connections | the bound: \`database.pool_size\` + 2 = $fleet_connection_bound | | <= the bound | $(verdict "$fc_connections <= $fleet_connection_bound") |"
    row 7 "| 7 | fleet, first cycle: a window's time in the ledger, mean (\`fetch_ms\`, \`load_ms\`) | fetch $fc_fetch_ms ms, load $fc_load_ms ms (99th percentile $fc_load_p99_ms ms); database work waited $fc_session_wait_ms ms for a session, mean | the server's latency $fleet_latency_ms ms | | | |"
    row 7 "| 7 | fleet, first cycle: comeback-sync's own CPU | $fc_cpu_s s ($(calc "$fc_cpu_s * 1000 / $fc_requests" 2) CPU-ms a request; $fc_requests requests for $fleet_windows windows) | wall time $fc_s s; fake server $fc_fake_cpu % of a core | $(calc "$fc_cpu_s / $fc_s * 100" 0) % of a core | | |"

    say "8. fleet: steady state for $fleet_steady_s s, poll_interval $fleet_poll"
    fleet_steady_state "$fleet_poll_s"
    number "steady-state CPU per re-fetch" "$st_cpu_ms"
    number "steady-state freshness" "$st_fresh_max"
    ((st_written == 0 && st_history == 0)) ||
        fail "the steady state over unchanged data wrote $st_written row versions and $st_history history rows"
    row 8 "| 8 | fleet, steady state over $st_s s (\`poll_interval: $fleet_poll\`): RSS | $(mib "$st_rss_kib") MiB (peak $(mib "$st_peak_rss_kib")) | \`comeback-sync --version\` $(mib "$version_kib") MiB | $(calc "$st_rss_kib / $version_kib")x | < 64 MiB | $(verdict "$st_peak_rss_kib < 65536") |"
    row 8 "| 8 | fleet, steady state: comeback-sync's own CPU per re-fetch of an unchanged window | $st_cpu_ms CPU-ms ($st_cpu_s s over $st_requests re-fetches; written $st_written row versions, $st_history history rows) | fake server $st_fake_cpu % of a core | $(calc "$st_cpu_s / $st_s * 100" 0) % of a core | <= 0.5 CPU-ms | $(verdict "$st_cpu_ms <= 0.5") |"
    row 8 "| 8 | fleet, steady state: longest time a window went unfetched, over its tier's interval, worst window of each customer | max ${st_fresh_max}x (99th percentile ${st_fresh_p99}x, median ${st_fresh_median}x; $st_fresh_over customers over 1.2x) | tier intervals: $fleet_poll within $fleet_fresh_days days (every fresh window), 1h within 90 | | <= 1.2x | $(verdict "$st_fresh_max <= 1.2") |"
    row 8 "| 8 | fleet, steady state: database connections, most at once | $st_connections | the bound $fleet_connection_bound | | <= the bound | $(verdict "$st_connections <= $fleet_connection_bound") |"

    say "9. /metrics of the fleet daemon"
    fleet_scrape
    number "/metrics bytes" "$mx_bytes"
    row 9 "| 9 | \`/metrics\` at $fleet_customers customers, default settings: one scrape (median of 5) | $(calc "$mx_bytes / 1e6" 2) MB, $mx_lines lines, $mx_ms ms | | | <= 1 MB and < 50 ms | $(verdict "$mx_bytes <= 1000000 && $mx_ms < 50") |"
    # The other mode, once the daemon has a switch for it: every customer's series.
    local all_config="$work/fleet-all.yaml"
    sed 's/^metrics:$/metrics:\n  per_customer_series: all/' "$work/fleet.yaml" >"$all_config"
    if "$sync_bin" check-config -c "$all_config" >/dev/null 2>&1; then
        say "   again with metrics.per_customer_series: all (restarted, one poll interval later)"
        fleet_stop_daemon
        fleet_start_daemon "$all_config"
        sleep "$(calc "$fleet_poll_s * 1.1 + 5" 0)"
        fleet_alive
        fleet_scrape
        row 9 "| 9 | \`/metrics\` at $fleet_customers customers, \`metrics.per_customer_series: all\`: one scrape (median of 5) | $(calc "$mx_bytes / 1e6" 2) MB, $mx_lines lines, $mx_ms ms | | | (no goal; the other mode) | |"
    else
        row 9 "| 9 | \`/metrics\`, every customer's series | (the daemon has no \`metrics.per_customer_series\` yet: the scrape above is its only mode) | | | | |"
    fi
    fleet_stop_daemon

    say "7. fleet: the first cycle again, throwaway settings"
    pg_durability throwaway
    fleet_durability=throwaway
    fleet_first_cycle
    fleet_stop_daemon
    pg_durability production
    number "fleet first cycle (throwaway)" "$fc_s"
    figure="$fc_s s"
    [[ -n $fc_incomplete ]] && figure="not finished after $fc_s s ($fc_incomplete)"
    row 7 "| 7 | fleet, first cycle, **throwaway settings** | $figure (peak RSS $(mib "$fc_peak_kib") MiB, $fc_connections connections, own CPU $fc_cpu_s s; a window: fetch $fc_fetch_ms ms, load $fc_load_ms ms) | requests / rate $floor_s s | $(calc "$fc_s / $floor_s")x the floor | (for comparison) | |"

    fleet_far_database "$floor_s"
}
