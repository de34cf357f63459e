#!/usr/bin/env bash
# The systemd/ install rules put the unit, the schema, the example
# configuration and the docs where the unit and the README say they are.
#   install_rules_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
dest=$(mktemp -d /tmp/comeback-install-test.XXXXXX)
trap 'rm -rf "$dest"' EXIT

DESTDIR=$dest cmake -DCMAKE_INSTALL_PREFIX=/usr -P "$build/systemd/cmake_install.cmake" >/dev/null

expect=(usr/lib/systemd/system/comeback-sync.service
        usr/share/doc/comeback-sync/comeback-sync.example.yaml
        usr/share/doc/comeback-sync/README.md)
for sql in "$source"/schema/*.sql; do
    expect+=("usr/share/comeback-sync/schema/$(basename "$sql")")
done
for page in "$source"/docs/*.md; do
    expect+=("usr/share/doc/comeback-sync/docs/$(basename "$page")")
done
# The unit's Documentation= names installed files.
for uri in $(sed -n 's/^Documentation=//p' "$source/systemd/comeback-sync.service"); do
    [[ $uri == file:///* ]] && expect+=("${uri#file:///}")
done
status=0
for file in "${expect[@]}"; do
    [[ -f "$dest/$file" ]] || { echo "FAIL: not installed: /$file" >&2; status=1; }
done
cmp -s "$source/systemd/comeback-sync.service" "$dest/usr/lib/systemd/system/comeback-sync.service" ||
    { echo "FAIL: installed unit differs from systemd/comeback-sync.service" >&2; status=1; }
((status == 0)) && echo "ok: ${#expect[@]} files installed"
exit $status
