#!/usr/bin/env bash
# scripts/package turns the build tree into comeback-sync_<version>_<arch>.deb
# with the control fields Debian wants, Depends computed from the binary's
# shared libraries, and every file where the unit, the man page and the docs
# say it is. Later tests install and lint this file.
#   package_build_test.sh SOURCE_DIR BUILD_DIR OUT_DIR
set -euo pipefail
source=$1 build=$2 out=$3
fail() { echo "FAIL: $*" >&2; exit 1; }

rm -rf "$out"
deb=$(BUILD_DIR=$build OUT_DIR=$out "$source/scripts/package" | tail -n 1)
version=$("$build/daemon/comeback-sync" --version)
version=${version#comeback-sync }
arch=$(dpkg --print-architecture)
[[ "$(basename "$deb")" == "comeback-sync_${version}_${arch}.deb" ]] ||
    fail "scripts/package printed $deb, expected comeback-sync_${version}_${arch}.deb"
echo "ok: $(basename "$deb")"

field() { dpkg-deb --field "$deb" "$1"; }
[[ "$(field Package)" == comeback-sync ]] || fail "Package: $(field Package)"
[[ "$(field Version)" == "$version" ]] || fail "Version $(field Version) is not the binary's $version"
[[ "$(field Architecture)" == "$arch" ]] || fail "Architecture: $(field Architecture)"
for name in Maintainer Section Priority Description Depends; do
    [[ -n "$(field "$name")" ]] || fail "no $name: field"
done
[[ "$(head -n 1 "$source/packaging/changelog")" == "comeback-sync ($version) "* ]] ||
    fail "packaging/changelog does not start with version $version"
echo "ok: control fields"

# Every library the binary needs comes from a package named in Depends.
depends=$(field Depends)
# The package names in Depends, one a line (versions and alternatives aside).
depends_names=$(tr ',|' '\n\n' <<<"$depends" | awk '{ print $1 }')
mapfile -t needed < <(objdump -p "$build/daemon/comeback-sync" | awk '$1 == "NEEDED" { print $2 }')
((${#needed[@]} > 3)) || fail "objdump found only ${#needed[@]} needed libraries"
for lib in "${needed[@]}"; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found { print $NF; found = 1 }')
    [[ -n "$path" ]] || fail "$lib is not in the linker cache"
    # dpkg may know the file by its /lib or its /usr/lib name (merged /usr).
    real=$(realpath "$path")
    owner=
    for candidate in "$path" "$real" "${path#/usr}" "${real#/usr}" "/usr${path#/usr}" "/usr${real#/usr}"; do
        owner=$(dpkg-query -S "$candidate" 2>/dev/null) && break
    done
    [[ -n "$owner" ]] || fail "no package owns $path"
    owner=${owner%%:*}
    # Depends may name the package or a virtual package it provides.
    names=("$owner")
    IFS=',' read -r -a provides <<<"$(dpkg-query -W -f='${Provides}' "$owner")"
    for p in "${provides[@]}"; do p=${p# }; names+=("${p%% *}"); done
    found=no
    for name in "${names[@]}"; do
        grep -qxF -- "$name" <<<"$depends_names" && found=yes
    done
    [[ $found == yes ]] || fail "$lib is from $owner (${names[*]}), which Depends lacks: $depends"
done
echo "ok: Depends names the package of each of ${#needed[@]} libraries: $depends"

contents=$(dpkg-deb --contents "$deb" | awk '{ print $6 }' | sed 's|^\./|/|')
expect=(/usr/bin/comeback-sync
        /usr/lib/systemd/system/comeback-sync.service
        /etc/comeback-sync/config.yaml
        /usr/share/man/man1/comeback-sync.1.gz
        /usr/share/doc/comeback-sync/copyright
        /usr/share/doc/comeback-sync/changelog.gz
        /usr/share/doc/comeback-sync/comeback-sync.example.yaml
        /usr/share/comeback-sync/prometheus/comeback-sync.rules.yml
        /usr/share/comeback-sync/grafana/comeback-sync.json)
for sql in "$source"/schema/*.sql; do expect+=("/usr/share/comeback-sync/schema/$(basename "$sql")"); done
for file in "${expect[@]}"; do
    grep -qxF "$file" <<<"$contents" || fail "the package lacks $file"
done
if grep -v -e '^/usr/' -e '^/etc/comeback-sync' -e '^/$' -e '^/etc/$' <<<"$contents"; then
    fail "the package holds files outside /usr and /etc/comeback-sync (above)"
fi
echo "ok: ${#expect[@]} files in place"

control=$(mktemp -d /tmp/comeback-package-control.XXXXXX)
trap 'rm -rf "$control"' EXIT
dpkg-deb --control "$deb" "$control"
[[ "$(cat "$control/conffiles")" == /etc/comeback-sync/config.yaml ]] ||
    fail "conffiles is not exactly /etc/comeback-sync/config.yaml: $(cat "$control/conffiles")"
for script in postinst prerm postrm; do
    [[ -x "$control/$script" ]] || fail "no executable $script"
    sh -n "$control/$script" || fail "$script is not valid sh"
done
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/comeback-sync >"$control/binary"
if objdump -h "$control/binary" | grep -q '\.debug_info'; then fail "the packaged binary keeps its debug info"; fi
cmp -s <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./etc/comeback-sync/config.yaml) \
       "$source/config/comeback-sync.example.yaml" ||
    fail "/etc/comeback-sync/config.yaml differs from config/comeback-sync.example.yaml"
echo "ok: conffile, maintainer scripts, stripped binary"
