#!/usr/bin/env bash
# Every ```sql block of docs/data-model.md runs, read-only, and returns rows on
# a data set the real binary backfilled from the fake Vitec server: two
# customers from eight weeks back to eight weeks ahead of today, re-fetched
# after a generation of changes (history, deletes), and a customer whose
# response holds unreadable elements (rejected rows). The docs name the
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
