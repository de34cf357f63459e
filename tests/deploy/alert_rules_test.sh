#!/usr/bin/env bash
# promtool accepts the alerting rules and their unit tests pass. Fails (does
# not skip) without promtool, which Debian's prometheus package ships.
#   alert_rules_test.sh DEPLOY_PROMETHEUS_DIR
set -euo pipefail
dir=$1
command -v promtool >/dev/null ||
    { echo "FAIL: promtool not found; scripts/bootstrap installs it (package prometheus)" >&2; exit 1; }
promtool check rules "$dir/comeback-sync.rules.yml"
# promtool resolves rule_files relative to the test file.
promtool test rules "$dir/comeback-sync.rules.test.yml"
