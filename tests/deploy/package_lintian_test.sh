#!/usr/bin/env bash
# lintian finds no error and no warning in the package. Info tags are shown,
# not counted; overrides, should the package ever ship some, are listed too.
#   package_lintian_test.sh PACKAGE_DIR
set -euo pipefail
dir=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v lintian >/dev/null ||
    fail "lintian not found; scripts/bootstrap installs it (scripts/packages.txt)"
debs=("$dir"/comeback-sync_*.deb)
[[ -f "${debs[0]}" && ${#debs[@]} == 1 ]] || fail "expected one package in $dir, found: ${debs[*]}"

# --show-overrides lists the kept tags too, so the log shows the whole picture.
set +e
lintian --display-info --show-overrides --fail-on error,warning "${debs[0]}"
status=$?
set -e
((status == 0)) || fail "lintian reports errors or warnings (above), exit $status"
echo "ok: lintian"
