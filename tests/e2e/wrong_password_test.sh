#!/usr/bin/env bash
# One customer with a wrong password fails alone, with exit code 1 and a clear message.
source "$(dirname "$0")/lib.sh"
e2e_init wrong_password
export E2E_WRONG_PASSWORD=not-the-password

start_fake fake --customers M1,M2,M3
write_config "$work/config.yaml" "M1 M2:E2E_WRONG_PASSWORD M3"
set +e
run_cs backfill backfill -c "$work/config.yaml" --from "$E2E_FROM" --to "$E2E_TO"
code=$?
set -e
((code == 1)) || fail "backfill exited $code, expected 1"
grep -q "M2" "$work/backfill.log" || fail "the output does not name customer M2"
grep -Eiq "401|credential|password|unauthori" "$work/backfill.log" ||
    fail "the output does not say the credentials were rejected"
grep -q "not-the-password" "$work/backfill.log" && fail "the password itself appears in the output"
echo "ok: exit 1, message: $(grep -m1 M2 "$work/backfill.log")"

dump_expected "$work/expected.csv" --customers M1,M2,M3
grep -v '^"M2",' "$work/expected.csv" >"$work/expected-others.csv" || true
report_csv "$work/actual.csv" "$work/expected.csv.header"
expect_same "$work/expected-others.csv" "$work/actual.csv" "M1 and M3 are complete, M2 has nothing"
