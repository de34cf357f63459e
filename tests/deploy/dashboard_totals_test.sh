#!/usr/bin/env bash
# The dashboard's panels, with "All" customers picked, read the same whether
# the daemon serves metrics.per_customer_series: all (every customer labelled)
# or trouble (totals without a customer label, plus the customers in trouble):
# promtool evaluates each panel's expression as a recording rule against both
# shapes of the same traffic (dashboard_totals.test.yml).
#   PROMQL_NAMES=... dashboard_totals_test.sh DASHBOARD TEST_FILE
set -euo pipefail
: "${PROMQL_NAMES:?PROMQL_NAMES must name the promql-metric-names tool}"
dashboard=$1
test_file=$2
command -v promtool >/dev/null ||
    { echo "FAIL: promtool not found; scripts/bootstrap installs it (package prometheus)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One recording rule per panel target that filters on $customer, named after
# its panel and refId: "panel 'Windows by result' A" -> dashboard:panel_windows_by_result_a.
{
    echo "groups:"
    echo "  - name: dashboard"
    echo "    rules:"
    "$PROMQL_NAMES" --expressions --dashboard "$dashboard" |
        while IFS=$'\t' read -r where expression; do
            [[ $where == panel* && $expression == *'$customer'* ]] || continue
            name=$(tr '[:upper:]' '[:lower:]' <<<"$where" | sed -E 's/[^a-z0-9]+/_/g; s/^_+|_+$//g')
            expression=${expression//'$customer'/.*}
            expression=${expression//'$__rate_interval'/5m}
            printf '      - record: dashboard:%s\n        expr: %s\n' "$name" "'${expression//\'/\'\'}'"
        done
} >"$work/dashboard.rules.yml"
rules=$(grep -c 'record:' "$work/dashboard.rules.yml" || true)
((rules >= 8)) || { echo "FAIL: only $rules panel expressions filter on \$customer" >&2; exit 1; }
cp "$test_file" "$work/"
promtool check rules "$work/dashboard.rules.yml"
promtool test rules "$work/$(basename "$test_file")"
