#!/usr/bin/env bash
# Every ```sql block of docs/data-model.md runs, read-only, and returns rows on
# a data set the real binary backfilled from the fake Vitec server: two
# customers from eight weeks back to eight weeks ahead of today, re-fetched
# after a generation of changes (history, deletes), a customer whose
# response holds unreadable elements (rejected rows), and one whose window
# came back empty (a held window). The docs name the
# default schema `vitec`; the test runs them in its own schema.
source "$(dirname "$0")/lib.sh"
e2e_init docs

page=$(cd "$(dirname "$0")/../.." && pwd)/docs/data-model.md
from=$(date -d '-56 days' +%F)
to=$(date -d '+56 days' +%F)
customers="M12345,M67890"

note "backfill $customers, $from .. $to, then generation 1 of the data"
start_fake gen0 --customers "$customers" --from "$from" --to "$to"
write_config "$work/config.yaml" "M12345 M67890"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"
run_cs backfill0 backfill -c "$work/config.yaml" --from "$from" --to "$to" || fail "backfill exited $?"
stop_fake
start_fake gen1 --customers "$customers" --from "$from" --to "$to" --generation 1
write_config "$work/config.yaml" "M12345 M67890"
run_cs backfill1 backfill -c "$work/config.yaml" --from "$from" --to "$to" --force ||
    fail "generation 1 backfill exited $?"
stop_fake

note "a customer whose response holds unreadable elements"
mkdir -p "$work/fixture"
cp "$(dirname "$0")/../fixtures/responses/malformed_elements.json" "$work/fixture/M99999.json"
start_fake fixture --fixture "$work/fixture"
write_config "$work/rejects.yaml" "M99999"
run_cs backfill2 backfill -c "$work/rejects.yaml" --from "$(date +%F)" --to "$(date +%F)" ||
    fail "fixture backfill exited $?"

note "a customer whose window then came back empty (a held window)"
echo "[$(fixture_rows "$(date +%F)" 0 25)]" >"$work/fixture/M55555.json"
write_config "$work/held.yaml" "M55555"
run_cs backfill3 backfill -c "$work/held.yaml" --from "$(date +%F)" --to "$(date +%F)" ||
    fail "fixture backfill exited $?"
echo "[]" >"$work/fixture/M55555.json"
set +e; run_cs backfill4 backfill -c "$work/held.yaml" --from "$(date +%F)" --to "$(date +%F)" --force; code=$?; set -e
((code == 1)) || fail "the emptied window was not held (backfill exited $code)"
stop_fake

note "the queries of docs/data-model.md"
mkdir -p "$work/queries"
# Each block becomes NN.sql, and the heading above it NN.title.
awk -v dir="$work/queries" '
    /^#+ /                  { heading = $0; sub(/^#+ +/, "", heading) }
    /^```sql[[:space:]]*$/ { n++; file = sprintf("%s/%02d", dir, n); inside = 1
                             print heading > (file ".title"); close(file ".title"); next }
    /^```/ && inside        { inside = 0; close(file ".sql"); next }
    inside                  { print > (file ".sql") }
' "$page"
queries=("$work"/queries/*.sql)
[[ -e ${queries[0]} ]] || fail "docs/data-model.md has no \`\`\`sql block"
((${#queries[@]} >= 8)) || fail "expected at least 8 queries in docs/data-model.md, found ${#queries[@]}"

status=0
for query in "${queries[@]}"; do
    title=$(cat "${query%.sql}.title")
    sed -i "s/\bvitec\./$schema./g" "$query"
    if ! out=$(PGOPTIONS="$PGOPTIONS -c default_transaction_read_only=on" \
               psql -XqAt -v ON_ERROR_STOP=1 -f "$query" 2>&1); then
        echo "FAIL: query $(basename "$query") ($title) failed: $out" >&2
        status=1
        continue
    fi
    printf '%s\n' "$out" >"${query%.sql}.out"
    rows=$(grep -c . <<<"$out" || true)
    if ((rows == 0)); then
        echo "FAIL: query $(basename "$query") ($title) returned no rows" >&2
        status=1
        continue
    fi
    echo "ok: query $(basename "$query") returned $rows rows"
done
((status == 0)) || fail "some documented queries do not work"
echo "ok: all ${#queries[@]} queries of docs/data-model.md ran and returned rows"

# doc_rows TITLE: what the documented query under that heading returned (psql -At: a|b|c).
doc_rows() {
    local title
    for title in "$work"/queries/*.title; do
        [[ "$(cat "$title")" == "$1" ]] && { cat "${title%.title}.out"; return 0; }
    done
    fail "docs/data-model.md has no query under \"$1\""
}

note "the BI starter queries say what they promise, checked against the tables"
# Overdue per office: customer|office|overdue|oldest|average_days_overdue. The
# offices' counts add up to the overdue New comebacks counted from the tables.
overdue=$(doc_rows "Overdue comebacks per office")
offices_with_overdue=$(awk -F'|' '$2 != "(no office)" && $3 > 0' <<<"$overdue" | wc -l)
((offices_with_overdue >= 2)) || fail "overdue per office names fewer than 2 offices: $overdue"
listed=$(awk -F'|' '{ n += $3 } END { print n + 0 }' <<<"$overdue")
counted=$(sql "SELECT count(*) FROM $schema.comebacks
               WHERE deleted_at IS NULL AND state = 'New'
                 AND occurs_at < date_trunc('day', now() AT TIME ZONE 'Europe/Stockholm')
                                 AT TIME ZONE 'Europe/Stockholm'")
((listed == counted && counted > 0)) || fail "overdue per office adds up to $listed, the tables hold $counted"
awk -F'|' '$5 <= 0 { exit 1 }' <<<"$overdue" || fail "an office's comebacks are overdue by 0 days or less: $overdue"
echo "ok: overdue per office: $counted overdue comebacks over $offices_with_overdue offices"

# Completion rate: customer|month|due|completed|completed_percent, months not
# in the future, some completed and some not, the percentage their ratio.
rates=$(doc_rows "Completion rate per month")
awk -F'|' -v this_month="$(TZ=Europe/Stockholm date +%Y-%m-01)" '
    $2 > this_month || $4 > $3 || $3 <= 0 { print "bad row: " $0; bad = 1 }
    { want = 100 * $4 / $3; if (want - $5 > 0.051 || $5 - want > 0.051) { print "percent of " $0 " is not " want; bad = 1 } }
    $4 > 0 && $4 < $3 { partial++ }
    END { if (partial < 2) { print "fewer than 2 months with a partial rate"; bad = 1 }; exit bad }
' <<<"$rates" || fail "completion rate per month: $rates"
completed=$(awk -F'|' '{ n += $4 } END { print n + 0 }' <<<"$rates")
counted=$(sql "SELECT count(*) FROM $schema.comebacks
               WHERE deleted_at IS NULL AND state = 'Completed' AND occurs_at < now()")
((completed == counted)) || fail "completion rate per month counts $completed completed, the tables hold $counted"
echo "ok: completion rate per month: $(wc -l <<<"$rates") rows, $completed completed"

note "comeback_state_changes: one first row per comeback, then every change of state"
check() { [[ "$(sql "$1")" == t ]] || fail "$2"; }
check "SELECT (SELECT count(*) FROM $schema.comeback_state_changes WHERE from_state IS NULL AND change = 'insert')
            = (SELECT count(DISTINCT (customer_id, comeback_id)) FROM $schema.comeback_history)" \
    "comeback_state_changes does not have exactly one first row per comeback"
# The same changes found another way: each version joined to the one it closed.
check "SELECT count(*) > 0 AND count(*) = (SELECT count(*) FROM $schema.comeback_state_changes
                                           WHERE change <> 'insert')
       FROM $schema.comeback_history h
       JOIN $schema.comeback_history p
         ON p.customer_id = h.customer_id AND p.comeback_id = h.comeback_id AND p.valid_to = h.valid_from
       WHERE h.state IS DISTINCT FROM p.state" \
    "comeback_state_changes does not list every version whose state differs from the one before"
check "SELECT NOT EXISTS (SELECT 1 FROM $schema.comeback_state_changes
                          WHERE change <> 'insert' AND from_state IS NOT DISTINCT FROM to_state)" \
    "comeback_state_changes lists a version whose state did not change"
echo "ok: comeback_state_changes: $(sql "SELECT count(*) FROM $schema.comeback_state_changes WHERE change <> 'insert'") changes of state"
