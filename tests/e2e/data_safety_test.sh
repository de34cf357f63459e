#!/usr/bin/env bash
# A broken response never erases good data, and personal data can be
# forgotten: the real binary against responses a real API, proxy or bug can
# produce (served as fixtures by the fake Vitec server), with the deletion
# guard's defaults (more than half of a window, and at least 20, is held).
source "$(dirname "$0")/lib.sh"
e2e_init safety

day=2024-05-08        # a Wednesday: its window is Monday 2024-05-06 .. 2024-05-12
mkdir -p "$work/fixture"
respond() { echo "$1" >"$work/fixture/M1.json"; }
start_fake fixture --fixture "$work/fixture"
write_config "$work/config.yaml" "M1"
run_cs migrate migrate -c "$work/config.yaml" || fail "migrate failed"

# backfill LOG [options]: the one window of $day; returns the exit code.
backfill() { local log=$1; shift; run_cs "$log" backfill -c "$work/config.yaml" --from $day --to $day "$@"; }
live() { sql "SELECT count(*) FROM $schema.comebacks WHERE deleted_at IS NULL"; }
window_status() { sql "SELECT status FROM $schema.sync_windows WHERE customer_id = 'M1'"; }
expect_exit() {  # expect_exit CODE WHAT COMMAND...
    local want=$1 what=$2; shift 2
    set +e; "$@"; local got=$?; set -e
    ((got == want)) || fail "$what: exit $got, expected $want"
}

note "40 comebacks loaded"
respond "[$(fixture_rows $day 0 40)]"
backfill base || fail "first backfill exited $?"
[[ $(live) == 40 ]] || fail "expected 40 live comebacks, found $(live)"
before=$(db_digest)

note "a window that suddenly comes back empty is held, not emptied"
respond "[]"
expect_exit 1 "backfill of an empty window" backfill empty --force
[[ $(db_digest) == "$before" ]] || fail "the empty response changed stored comebacks"
[[ $(window_status) == held ]] || fail "the window is $(window_status), expected held"
grep -q 'window.held customer=M1 from=2024-05-06T00:00:00 to=2024-05-13T00:00:00 would_delete=40 live=40' \
    "$work/empty.log" || fail "no window.held warning naming the customer, the window and the numbers"
grep -q -- '--from 2024-05-06 --to 2024-05-12 --customer M1 --accept-deletes' "$work/empty.log" ||
    fail "the warning does not tell how to accept"
grep -q '^held windows' "$work/empty.log" || fail "the backfill summary lists no held window"
run_cs status status -c "$work/config.yaml" --json || fail "status --json exited $?"
grep -q '"windows_held":1' "$work/status.log" || fail "status --json does not count the held window"
grep -q '"would_delete":40,"live":40' "$work/status.log" || fail "status --json does not list the held window"
run_cs status_table status -c "$work/config.yaml" || fail "status exited $?"
grep -q '^held windows' "$work/status_table.log" || fail "status does not list held windows"
echo "ok: held with nothing changed, and told"

note "every element's id unreadable (PascalCase keys): the window fails, nothing is deleted"
respond "[$(fixture_rows $day 0 40 | sed 's/"id":"K/"Id":"K/g')]"
expect_exit 1 "backfill of unreadable ids" backfill pascal
grep -q 'window.failed customer=M1.*kind=all_rejected.*every one of the 40 elements was rejected' \
    "$work/pascal.log" || fail "no window.failed naming the all-rejected response"
[[ $(db_digest) == "$before" ]] || fail "a response of unreadable ids changed stored comebacks"
echo "ok: failed, nothing deleted"

note "a response cut short fails after every retry and deletes nothing"
respond "[$(fixture_rows $day 0 40)]"
curl -fsS "$fake_url/_control/fault?count=6&spec=truncate=300" >/dev/null || fail "could not queue the fault"
expect_exit 1 "backfill of truncated responses" backfill truncated --force
grep -q 'window.failed customer=M1.*kind=transient.*connection closed before the response was complete' \
    "$work/truncated.log" || fail "no window.failed naming the cut-short response"
[[ $(db_digest) == "$before" ]] || fail "a truncated response changed stored comebacks"
echo "ok: failed, nothing deleted"

note "the good response again: the held window heals into what the clean load stored"
backfill healed || fail "backfill of the good response exited $?"
[[ $(db_digest) == "$before" ]] || fail "after the faults the stored comebacks differ from the clean load's"
[[ $(window_status) == complete ]] || fail "the window is $(window_status), expected complete"
[[ $(sql "SELECT count(*) FROM $schema.sync_windows WHERE held_since IS NOT NULL OR held_digest IS NOT NULL") == 0 ]] ||
    fail "the healed window still carries its hold"
echo "ok: converged"

note "one id unreadable among 20: nothing is deleted, the rest is loaded"
respond "[$(fixture_rows $day 0 19),{\"Id\":\"K019\",\"state\":\"New\"}]"
backfill one_unreadable --force || fail "backfill with one unreadable id exited $?"
[[ $(live) == 40 ]] || fail "an unreadable id let the window delete: $(live) live"
grep -q 'window.loaded customer=M1.*deleted=0.*unreadable_ids=1' "$work/one_unreadable.log" ||
    fail "window.loaded does not report the unreadable id"
[[ $(window_status) == complete ]] || fail "the window is $(window_status), expected complete"
echo "ok: nothing deleted"

note "a shrink by 60% is held, then applied once the same content has come back for 24 hours"
respond "[$(fixture_rows $day 0 16)]"
expect_exit 1 "backfill of a 60% shrink" backfill shrink1 --force
[[ $(live) == 40 ]] || fail "the shrink deleted before it was accepted"
expect_exit 1 "the same shrink again, too soon" backfill shrink2
[[ $(live) == 40 ]] || fail "the shrink was applied too soon"
# The span is measured from the stored first sighting of the held content.
sql "UPDATE $schema.sync_windows SET held_since = held_since - interval '25 hours'" >/dev/null
backfill shrink3 || fail "the shrink after the span exited $?"
[[ $(live) == 16 ]] || fail "after the span expected 16 live comebacks, found $(live)"
grep -q 'window.deletes_accepted customer=M1.*deleted=24 by=span' "$work/shrink3.log" ||
    fail "no window.deletes_accepted by=span"
[[ $(window_status) == complete ]] || fail "the window is $(window_status) after the span"
echo "ok: held twice, applied after the span"

note "--accept-deletes applies a held shrink at once"
respond "[$(fixture_rows $day 0 40)]"
backfill restore --force || fail "restoring 40 exited $?"
[[ $(live) == 40 ]] || fail "the comebacks did not come back: $(live) live"
respond "[$(fixture_rows $day 0 16)]"
expect_exit 1 "backfill of a 60% shrink" backfill shrink4 --force
backfill accept --accept-deletes || fail "backfill --accept-deletes exited $?"
[[ $(live) == 16 ]] || fail "--accept-deletes left $(live) live comebacks"
grep -q 'window.deletes_accepted customer=M1.*deleted=24 by=command' "$work/accept.log" ||
    fail "no window.deletes_accepted by=command"
echo "ok: accepted at once"

note "a small legitimate delete is applied at once"
respond "[$(fixture_rows $day 0 40)]"
backfill restore2 --force || fail "restoring 40 exited $?"
respond "[$(fixture_rows $day 0 35)]"
backfill small --force || fail "a small delete exited $?"
[[ $(live) == 35 ]] || fail "a delete of 5 of 40 left $(live) live"
echo "ok: 5 deleted at once"

note "null names erase nothing; a name never known is NULL; numeric enums are kept as text"
rows=$(fixture_rows $day 0 35 | sed -e 's/"name":"Contact 000"/"name":null/' -e 's/"name":"Contact 001"/"nome":"x"/')
respond "[$rows,{\"id\":\"K100\",\"contact\":{\"id\":\"C100\",\"name\":null},\"state\":3,\"origin\":0,\"occursAt\":\"${day}T11:00:00\"}]"
backfill names --force || fail "backfill with null names exited $?"
[[ $(sql "SELECT contact_name FROM $schema.comeback_report WHERE comeback_id = 'K000'") == "Contact 000" ]] ||
    fail "a null name erased a known one"
[[ $(sql "SELECT contact_name FROM $schema.comeback_report WHERE comeback_id = 'K001'") == "Contact 001" ]] ||
    fail "a missing name erased a known one"
[[ $(sql "SELECT contact_name IS NULL FROM $schema.comeback_report WHERE comeback_id = 'K100'") == t ]] ||
    fail "a name never known is not NULL"
[[ $(sql "SELECT state || '/' || origin FROM $schema.comeback_report WHERE comeback_id = 'K100'") == "3/0" ]] ||
    fail "numeric enums were not kept as their decimal text"
echo "ok: names kept, unknown name NULL, enums 3/0"

note "privacy.contact_names: pseudonymize, then omit, then keep"
export E2E_PSEUDONYM_KEY=e2e-pseudonym-key
write_config "$work/config.yaml" "M1" "privacy:
  contact_names: pseudonymize
  pseudonym_key_env: E2E_PSEUDONYM_KEY"
run_cs pseudo_check check-config -c "$work/config.yaml" || fail "check-config exited $?"
grep -q 'pseudonym_key: <from environment variable E2E_PSEUDONYM_KEY>' "$work/pseudo_check.log" ||
    fail "check-config does not show where the pseudonym key comes from"
grep -q "$E2E_PSEUDONYM_KEY" "$work/pseudo_check.log" && fail "check-config shows the pseudonym key"
respond "[$(fixture_rows $day 0 35)]"
backfill pseudo --force || fail "backfill with pseudonyms exited $?"
[[ $(sql "SELECT count(*) FROM $schema.contacts WHERE contact_id BETWEEN 'C000' AND 'C034'
          AND name ~ '^pseudonym:[0-9a-f]{32}$'") == 35 ]] || fail "the window's contacts are not pseudonymized"
[[ $(sql "SELECT count(DISTINCT name) FROM $schema.contacts WHERE name LIKE 'pseudonym:%'") == 35 ]] ||
    fail "distinct names did not get distinct pseudonyms"
run_cs apply_pseudo apply-privacy -c "$work/config.yaml" || fail "apply-privacy exited $?"
[[ $(sql "SELECT count(*) FROM $schema.contacts WHERE name LIKE 'Contact%'") == 0 ]] ||
    fail "apply-privacy left plain contact names"
pg_dump -n "$schema" >"$work/pseudo_dump.sql" || fail "pg_dump failed"
if grep -l -- "$E2E_PSEUDONYM_KEY" "$work"/*.log "$work/pseudo_dump.sql" >&2; then
    fail "the pseudonym key reached a log or the database"
fi
write_config "$work/config.yaml" "M1" "privacy:
  contact_names: omit"
backfill omit --force || fail "backfill with omitted names exited $?"
[[ $(sql "SELECT count(*) FROM $schema.contacts WHERE contact_id BETWEEN 'C000' AND 'C034' AND name IS NOT NULL") == 0 ]] ||
    fail "omit left contact names"
run_cs apply_omit apply-privacy -c "$work/config.yaml" || fail "apply-privacy exited $?"
[[ $(sql "SELECT count(*) FROM $schema.contacts WHERE name IS NOT NULL") == 0 ]] || fail "apply-privacy left names"
[[ $(sql "SELECT count(*) FROM $schema.users WHERE name = 'Bo Berg'") == 1 ]] || fail "omit touched user names"
write_config "$work/config.yaml" "M1"
backfill keep --force || fail "backfill keeping names exited $?"
[[ $(sql "SELECT name FROM $schema.contacts WHERE contact_id = 'C002'") == "Contact 002" ]] ||
    fail "keep did not bring the names back"
echo "ok: pseudonymized, omitted, kept"

note "forget-contact, then a sync that sends the name again: the name is nowhere"
bad="{\"id\":\"K900\",\"contact\":{\"id\":\"C002\",\"name\":\"Contact 002\"},\"occursAt\":\"not a time\"}"
respond "[$(fixture_rows $day 0 35),$bad]"
backfill rejected --force || fail "backfill with a rejected element exited $?"
[[ $(sql "SELECT count(*) FROM $schema.rejected_rows WHERE raw LIKE '%Contact 002%'") == 1 ]] ||
    fail "the rejected element naming the contact was not stored"
expect_exit 2 "forget-contact for an unknown customer" \
    run_cs forget_unknown forget-contact -c "$work/config.yaml" --customer M404 --contact C002
run_cs forget forget-contact -c "$work/config.yaml" --customer M1 --contact C002 || fail "forget-contact exited $?"
grep -q 'contact name erased: *yes' "$work/forget.log" || fail "forget-contact does not say it erased the name"
grep -q 'rejected rows withheld: *1' "$work/forget.log" || fail "forget-contact does not say it withheld the rejected row"
backfill again --force || fail "the sync after forget-contact exited $?"
backfill again_recheck --recheck || fail "the recheck after forget-contact exited $?"
pg_dump -n "$schema" >"$work/dump.sql" || fail "pg_dump failed"
grep -q 'Contact 001' "$work/dump.sql" || fail "the dump holds no contact names at all: the check would prove nothing"
if grep -n 'Contact 002' "$work/dump.sql" >&2; then fail "the erased name is still in the database"; fi
[[ $(sql "SELECT count(*) FROM $schema.contact_erasures WHERE contact_id = 'C002'") == 1 ]] ||
    fail "the erasure is not recorded"
echo "ok: the erased name is in no table"

note "run --once lists a held window and exits 1"
today=$(date +%F)
respond "[$(fixture_rows "$today" 500 25)]"
run_cs once1 run -c "$work/config.yaml" --once || fail "run --once exited $?"
respond "[]"
# Due again now, whatever the clock says.
sql "UPDATE $schema.sync_windows SET fetched_at = fetched_at - interval '1 day' WHERE first_day <= '$today' AND end_day > '$today'" >/dev/null
expect_exit 1 "run --once with a held window" run_cs once2 run -c "$work/config.yaml" --once
grep -q '^held windows' "$work/once2.log" || fail "run --once does not list the held window"
[[ $(sql "SELECT count(*) FROM $schema.comebacks WHERE occurs_at::date = '$today' AND deleted_at IS NULL") == 25 ]] ||
    fail "run --once deleted the held window's comebacks"
echo "ok: run --once held the window and exited 1"
