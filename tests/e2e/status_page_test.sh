#!/usr/bin/env bash
# The status page in a real browser: headless Chromium loads GET / from the
# real daemon, syncing from the fake Vitec server into the real PostgreSQL,
# and the rendered DOM shows each customer's windows in the states the ledger
# holds: M1 all fresh, M2 (a wrong password) failed and pending, and a ledger
# row whose customer id and error are markup, shown as text. Then a ledger of
# 400,000 windows: the page shows it, within a bounded rise of the daemon's
# peak memory. The DOM and a
# screenshot are kept in $TEST_OUTPUT_DIR (default: the current directory).
source "$(dirname "$0")/lib.sh"
if ! command -v chromium >/dev/null; then
    [[ -n "${CI:-}" ]] && fail "chromium is not installed (scripts/bootstrap installs it)"
    echo "chromium is not installed (scripts/bootstrap installs it): skipped"
    exit 77
fi
e2e_init status
out=${TEST_OUTPUT_DIR:-$PWD}/status_page
mkdir -p "$out"
rm -f "$out"/dom.html "$out"/status.png "$out"/chromium.log

start_fake fake --customers M1,M2
metrics_port=$(free_port)
url="http://127.0.0.1:$metrics_port/"
export E2E_WRONG_PASSWORD=not-the-password
write_config "$work/config.yaml" "M1 M2:E2E_WRONG_PASSWORD" "metrics:
  listen: 127.0.0.1:$metrics_port"
# Fetched windows stay fresh for an hour, so the states hold still while the browser looks.
sed -i '/^  poll_interval:/a\  freshness:\n    - within: 1000d\n      every: 1h' "$work/config.yaml"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed: $(cat "$work/migrate.log")"

evil_id="<script>document.title='owned'</script>"
evil_error="\"><img src=x onerror=alert(1)>"
sql "INSERT INTO $schema.sync_windows (customer_id, date_criteria, first_day, end_day,
                                       window_from, window_to, status, attempts, last_error, attempted_at)
     VALUES ('$(sed "s/'/''/g" <<<"$evil_id")', 'Occurrence', date '2026-01-05', date '2026-01-12',
             '2026-01-04T23:00:00Z', '2026-01-11T23:00:00Z', 'failed', 1,
             '$(sed "s/'/''/g" <<<"$evil_error")', now())" >/dev/null

start_run run "$work/config.yaml"
wait_for 60 "every M1 window complete" \
    "SELECT count(*) > 0 AND bool_and(status = 'complete') FROM $schema.sync_windows WHERE customer_id = 'M1'"
wait_for 60 "an M2 window failed" \
    "SELECT count(*) > 0 FROM $schema.sync_windows WHERE customer_id = 'M2' AND status = 'failed'"
# Parked after the 401 (vitec.retry.auth_backoff, 1h): M2's ledger holds still from here.
for ((i = 0; i < 100; i++)); do
    grep -q 'customer.parked customer=M2' "$work/run.log" && break
    sleep 0.2
done
grep -q 'customer.parked customer=M2' "$work/run.log" || fail "M2 was not parked after its 401"
m1_windows=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id = 'M1'")
m2_failed=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id = 'M2' AND status = 'failed'")
m2_pending=$(sql "SELECT count(*) FROM $schema.sync_windows WHERE customer_id = 'M2' AND status = 'pending'")
((m2_pending > 0)) || fail "M2 has no pending window left to show"

# The page reads the ledger at most every few seconds: wait until it has read this.
note "the page catches up with the ledger"
for ((i = 0; i < 100; i++)); do
    page=$(curl -fsS "$url") || fail "GET / failed"
    grep -q "$m1_windows fresh</td>" <<<"$page" && grep -q "$m2_failed failed</td>" <<<"$page" && break
    sleep 0.2
done
grep -q "$m1_windows fresh</td>" <<<"$page" || fail "the page never showed M1's $m1_windows fresh windows: $page"
for secret in "$E2E_PASSWORD" "$E2E_WRONG_PASSWORD"; do
    if grep -qF "$secret" <<<"$page"; then fail "the page shows a password"; fi
done
headers=$(curl -fsS -o /dev/null -D - "$url")
grep -qi "^content-security-policy: default-src 'none'" <<<"$headers" || fail "no Content-Security-Policy: $headers"

note "headless Chromium renders it"
browse() {
    timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$work/chromium" --enable-logging=stderr --window-size=1400,900 "$@" "$url"
}
browse --dump-dom >"$out/dom.html" 2>>"$out/chromium.log" || fail "chromium --dump-dom failed: $(tail -5 "$out/chromium.log")"
(cd "$out" && browse --screenshot="$out/status.png" >/dev/null 2>>"$out/chromium.log") ||
    fail "chromium --screenshot failed: $(tail -5 "$out/chromium.log")"
[[ "$(head -c 8 "$out/status.png" | od -An -tx1 | tr -d ' \n')" == 89504e470d0a1a0a ]] ||
    fail "the screenshot is not a PNG"
echo "ok: DOM and screenshot in $out"

# Console lines are script errors or content the page's policy blocked: none.
if grep -q ':CONSOLE' "$out/chromium.log"; then
    fail "the browser console reported: $(grep ':CONSOLE' "$out/chromium.log" | head -5)"
fi

dom=$(cat "$out/dom.html")
grep -q '<title>comeback-sync status</title>' <<<"$dom" || fail "the page's title changed: a script ran?"
# One line per customer: its facts row and its strip.
rows=$(tr '\n' ' ' <<<"$dom" | sed 's/<tr class="facts"/\n&/g')
customer_row() { grep -F "<tr class=\"facts\" data-customer=\"$1\">" <<<"$rows" || fail "the DOM has no row for $1"; }
marks() { grep -o 'class="w [a-z]*"' <<<"$1" | sed 's/class="w \(.*\)"/\1/' | sort | uniq -c | awk '{ print $2 "=" $1 }' | paste -sd' '; }

m1=$(customer_row M1)
[[ "$(marks "$m1")" == "complete=$m1_windows" ]] ||
    fail "M1's strip shows $(marks "$m1"), expected complete=$m1_windows"
m2=$(customer_row M2)
[[ "$(marks "$m2")" == "failed=$m2_failed pending=$m2_pending" ]] ||
    fail "M2's strip shows $(marks "$m2"), expected failed=$m2_failed pending=$m2_pending"
grep -q '<td class="last-success">never</td>' <<<"$m2" || fail "M2 shows a last success"
grep -q '<td class="failure">[^<]*<span class="kind">credentials_rejected</span> [^<]*401' <<<"$m2" ||
    fail "M2 shows no 401, with its kind, as its last failure: $m2"
echo "ok: M1 shows $m1_windows fresh windows, M2 $m2_failed failed and $m2_pending pending"

# The markup in the seeded row is text: no element came of it (attribute
# values removed first, since a browser may keep < and > inside them).
evil=$(customer_row "&lt;script&gt;document.title='owned'&lt;/script&gt;")
[[ "$(marks "$evil")" == "failed=1" ]] || fail "the seeded customer's strip shows $(marks "$evil")"
grep -qF '<td class="customer">&lt;script&gt;document.title=' <<<"$evil" || fail "the seeded id is not shown as text"
grep -qF '&gt;&lt;img src=x onerror=alert(1)&gt;</td>' <<<"$evil" || fail "the seeded error is not shown as text"
elements=$(sed 's/"[^"]*"//g' <<<"$dom")
if grep -qi '<script\|<img' <<<"$elements"; then fail "the seeded markup became an element"; fi
echo "ok: markup from the database stays text"

note "a ledger of 400,000 windows: the page reads it a chunk at a time and keeps the pages asked for"
# 800 customers no longer configured, 500 weekly windows each (the strip shows
# at most 520). The page counts every window but keeps the strips of the
# pages asked for only (8 to 13 MiB here; 28 MiB when it kept every window); the read
# itself holds at most a chunk of rows, where the same rows read as one result
# raised it 78 MiB. The sync_status view reads each customer's windows once
# (009): it joined its lookups to every window before, and this ledger took
# minutes.
hwm_before=$(memory_kib "$run_pid" VmHWM)
sql "INSERT INTO $schema.sync_windows (customer_id, date_criteria, first_day, end_day, window_from, window_to,
                                       status, attempts, fetched_at, attempted_at)
     SELECT 'B' || lpad(c::text, 4, '0'), 'Occurrence', date '2010-01-04' + 7 * w, date '2010-01-11' + 7 * w,
            (date '2010-01-04' + 7 * w)::timestamptz, (date '2010-01-11' + 7 * w)::timestamptz,
            'complete', 1, now(), now()
     FROM generate_series(1, 800) c, generate_series(0, 499) w" >/dev/null
fetch_until "$url" 'B0001 (not configured)' ||
    fail "the page never showed the 800 customers added: $(grep -o '<p class="[a-z-]*">[^<]*' <<<"$fetched" | head -3)"
page=$fetched
grep -q '500 fresh</td>' <<<"$page" || fail "B0001's 500 windows are not counted: $(grep -m1 B0001 <<<"$page")"
grep -q 'page 1 of 17' <<<"$page" || fail "803 customers are not 17 pages of 50"
# complete_marks_match HTML: every B customer listed shows its 500 marks.
complete_marks_match() {
    local listed marks
    listed=$(grep -o 'data-customer="B[0-9]*"' <<<"$1" | wc -l || true)
    marks=$(grep -o '<span class="w complete"' <<<"$1" | wc -l || true)
    ((listed > 0 && marks == listed * 500)) || fail "$listed B customers listed with $marks complete marks"
}
complete_marks_match "$page"
# Another page: its customers' counts at once, their strips from the next read.
fetch_until "$url?page=2" 'B0051 (not configured)' || fail "page 2 does not list B0051"
fetch_until "$url?page=2" '<span class="w complete"' ||
    fail "page 2 never showed its strips: $(grep -o '<p class="later">[^<]*' <<<"$fetched" | head -1)"
complete_marks_match "$fetched"
! grep -q '<p class="later">' <<<"$fetched" || fail "page 2 still waits for strips once they show"
growth_mib=$((($(memory_kib "$run_pid" VmHWM) - hwm_before) / 1024))
((growth_mib < 20)) || fail "reading 400,000 windows raised the daemon's peak RSS by $growth_mib MiB (limit 20)"
echo "ok: 400,000 windows of 800 customers, pages 1 and 2 with their strips; the daemon's peak RSS rose by $growth_mib MiB"

kill -TERM "$run_pid"
set +e; wait "$run_pid"; code=$?; set -e
((code == 0)) || fail "run exited $code after SIGTERM"
