#!/usr/bin/env bash
# systemd-analyze rates the unit's exposure 2.0 or lower, and the unit keeps the
# settings operations rely on. Fails (does not skip) without systemd-analyze.
#   service_unit_security_test.sh UNIT_FILE
set -euo pipefail
unit=$1

command -v systemd-analyze >/dev/null ||
    { echo "FAIL: systemd-analyze not found; install the systemd package to check $unit" >&2; exit 1; }

report=$(systemd-analyze security --offline=true "$unit" 2>&1) ||
    { echo "$report" >&2; echo "FAIL: systemd-analyze security could not read $unit" >&2; exit 1; }
score=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")
[[ -n "$score" ]] || { echo "$report" >&2; echo "FAIL: no exposure level in the report" >&2; exit 1; }
echo "exposure level: $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
    { echo "$report" | grep '✗' >&2; echo "FAIL: exposure $score is above 2.0" >&2; exit 1; }

for setting in 'Type=notify' 'WatchdogSec=' 'Restart=on-failure' 'DynamicUser=yes' \
               'LoadCredential=vitec-password:' 'LimitCORE=0' \
               'ExecStart=/usr/bin/comeback-sync run -c /etc/comeback-sync/config.yaml' \
               'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qF -- "$setting" "$unit" || { echo "FAIL: $unit lacks $setting" >&2; exit 1; }
done
echo "ok"
