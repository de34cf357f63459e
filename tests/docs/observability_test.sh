#!/usr/bin/env bash
# docs/observability.md lists every log event (the event names passed to
# log_event in daemon/ and etl/) and every metric (the names metrics.cpp
# renders), so an operator can look up whatever the daemon writes.
#   observability_test.sh SOURCE_DIR
set -euo pipefail
root=$1
page=$root/docs/observability.md
status=0

# Event names are "stage.what" string literals in files that call log_event;
# #include lines are left out ("cli.hpp" has the same shape).
mapfile -t events < <(grep -rlE 'log_event\(' "$root/daemon" "$root/etl" --include='*.cpp' |
    xargs grep -hv '^#include' | grep -oE '"[a-z]+\.[a-z_]+"' | tr -d '"' | sort -u)
mapfile -t metrics < <(grep -ohE 'header\(out, "[a-z_]+"' "$root/daemon/observability/metrics.cpp" |
    sed 's/.*"\(.*\)"/comeback_sync_\1/' | sort -u)
((${#events[@]} >= 10)) || { echo "FAIL: found only ${#events[@]} log events in the code" >&2; exit 1; }
((${#metrics[@]} >= 5)) || { echo "FAIL: found only ${#metrics[@]} metrics in the code" >&2; exit 1; }

for name in "${events[@]}" "${metrics[@]}"; do
    grep -qF -- "\`$name\`" "$page" || { echo "FAIL: docs/observability.md does not list \`$name\`" >&2; status=1; }
done
((status == 0)) && echo "ok: ${#events[@]} log events and ${#metrics[@]} metrics documented"
exit $status
