#!/usr/bin/env bash
# The package on this machine: dpkg -i installs it; the installed binary runs,
# check-config accepts the installed configuration, systemd-analyze verifies the
# installed unit and `man comeback-sync` finds the manual page; dpkg -r keeps
# only the configuration (and the admin's enablement of the unit), dpkg --purge
# leaves nothing. Needs root (or password-less sudo, as scripts/bootstrap
# uses); without either it is reported as skipped (exit 77), never passed.
# Fails without touching anything on a machine where comeback-sync is
# installed otherwise: remove it first, or leave this test out (ctest -E package).
#   package_install_test.sh PACKAGE_DIR
set -euo pipefail
dir=$1
fail() { echo "FAIL: $*" >&2; exit 1; }
refuse() { fail "$* (remove it first, or leave this test out: ctest -E package)"; }

if ((EUID != 0)); then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then exec sudo -n "$0" "$@"; fi
    echo "SKIPPED: installing a package with dpkg needs root or password-less sudo" >&2
    exit 77
fi
for tool in dpkg systemd-analyze systemctl man; do
    command -v "$tool" >/dev/null || fail "$tool not found; scripts/bootstrap installs it"
done
status=$(dpkg-query -W -f='${db:Status-Status}' comeback-sync 2>/dev/null || true)
[[ -z "$status" || "$status" == not-installed ]] ||
    refuse "comeback-sync is already known to dpkg here (status $status); this test would replace and purge it"
for path in /usr/bin/comeback-sync /etc/comeback-sync /usr/lib/systemd/system/comeback-sync.service \
            /lib/systemd/system/comeback-sync.service /etc/systemd/system/comeback-sync.service.d; do
    [[ ! -e "$path" ]] || refuse "$path exists (installed by hand?); this test would overwrite and delete it"
done

debs=("$dir"/comeback-sync_*.deb)
[[ -f "${debs[0]}" && ${#debs[@]} == 1 ]] || fail "expected one package in $dir, found: ${debs[*]}"
deb=${debs[0]}
version=$(dpkg-deb --field "$deb" Version)

work=$(mktemp -d /tmp/comeback-package-install.XXXXXX)
installed=no
cleanup() {
    local code=$?
    if [[ $installed == yes ]]; then dpkg --purge comeback-sync >/dev/null 2>&1 || true; fi
    rm -rf "$work"
    exit $code
}
trap cleanup EXIT

# What the package may touch, before and after. /var/lib/systemd holds the
# record of the unit's enablement links.
snapshot() { find /etc /usr /opt /var/lib/systemd -xdev 2>/dev/null | LC_ALL=C sort; }
snapshot >"$work/before"

# Containers often tell dpkg to skip /usr/share/doc and /usr/share/man; this
# package's own docs and man page are wanted here, so they are included again.
installed=yes
dpkg --path-include='/usr/share/doc/comeback-sync/*' \
     --path-include='/usr/share/man/man1/comeback-sync.1.gz' -i "$deb" ||
    fail "dpkg -i $deb failed"
[[ "$(dpkg-query -W -f='${Status}' comeback-sync)" == "install ok installed" ]] ||
    fail "dpkg does not show comeback-sync installed"
echo "ok: dpkg -i $(basename "$deb")"

[[ "$(command -v comeback-sync)" == /usr/bin/comeback-sync ]] || fail "comeback-sync is not /usr/bin/comeback-sync"
[[ "$(comeback-sync --version)" == "comeback-sync $version" ]] ||
    fail "comeback-sync --version says '$(comeback-sync --version)', the package is $version"
echo "ok: $(comeback-sync --version)"

# The installed configuration names two password sources: the credential
# vitec-password (systemd's LoadCredential=) and the variable
# VITEC_PASSWORD_M12345. Provided here the way systemd and an admin would,
# leaving the conffile as shipped.
install -d -m 700 "$work/credentials"
printf 'default-secret-%s\n' "$RANDOM" >"$work/credentials/vitec-password"
chmod 600 "$work/credentials/vitec-password"  # as systemd's are: others' are refused
m12345_secret="m12345-secret-$RANDOM"
if ! env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CREDENTIALS_DIRECTORY="$work/credentials" \
        VITEC_PASSWORD_M12345="$m12345_secret" \
        comeback-sync check-config -c /etc/comeback-sync/config.yaml >"$work/check-config.out" 2>&1; then
    cat "$work/check-config.out" >&2
    fail "check-config refused the installed /etc/comeback-sync/config.yaml"
fi
grep -q '^configuration ok: /etc/comeback-sync/config.yaml$' "$work/check-config.out" ||
    fail "check-config did not confirm the file: $(cat "$work/check-config.out")"
if grep -qF -e "$m12345_secret" -e "$(cat "$work/credentials/vitec-password")" "$work/check-config.out"; then
    fail "check-config printed a password"
fi
dpkg --verify comeback-sync || fail "dpkg --verify finds installed files changed"
echo "ok: check-config accepts the installed configuration"

systemd-analyze verify /usr/lib/systemd/system/comeback-sync.service >"$work/verify.out" 2>&1 || {
    cat "$work/verify.out" >&2
    fail "systemd-analyze verify rejects the installed unit"
}
if grep -i 'comeback-sync' "$work/verify.out"; then
    fail "systemd-analyze verify warns about the installed unit (above)"
fi
echo "ok: systemd-analyze verify"

[[ "$(man -w comeback-sync)" == /usr/share/man/man1/comeback-sync.1.gz ]] ||
    fail "man -w comeback-sync says '$(man -w comeback-sync 2>&1)'"
MANWIDTH=80 man -P cat comeback-sync >"$work/man.out" 2>&1 || fail "man comeback-sync failed: $(cat "$work/man.out")"
grep -q 'EXIT STATUS' "$work/man.out" || fail "man comeback-sync shows no EXIT STATUS section: $(head "$work/man.out")"
echo "ok: man comeback-sync"

# An admin enables the unit; purge must take the links away again.
systemctl enable comeback-sync.service >"$work/enable.out" 2>&1 ||
    fail "systemctl enable comeback-sync failed: $(cat "$work/enable.out")"
[[ -L /etc/systemd/system/multi-user.target.wants/comeback-sync.service ]] ||
    fail "systemctl enable made no link in multi-user.target.wants"

dpkg -r comeback-sync || fail "dpkg -r failed"
[[ "$(dpkg-query -W -f='${db:Status-Status}' comeback-sync)" == config-files ]] ||
    fail "after dpkg -r the status is $(dpkg-query -W -f='${db:Status-Status}' comeback-sync), expected config-files"
snapshot >"$work/removed"
# Policy keeps the conffile (and its folder) until purge; the enablement links
# and their record stay with it, as they would for any Debian service.
unexpected=$(LC_ALL=C comm -13 "$work/before" "$work/removed" |
    grep -Ev '^/etc/comeback-sync(/config\.yaml)?$|^/etc/systemd/system/multi-user\.target\.wants(/comeback-sync\.service)?$|^/var/lib/systemd/deb-systemd-helper-enabled(/.*)?$' || true)
[[ -z "$unexpected" ]] || fail "dpkg -r left more than the configuration: $unexpected"
[[ -f /etc/comeback-sync/config.yaml ]] || fail "dpkg -r removed the conffile"
missing=$(LC_ALL=C comm -23 "$work/before" "$work/removed")
[[ -z "$missing" ]] || fail "dpkg -r removed what was there before: $missing"
echo "ok: dpkg -r keeps only the configuration"

dpkg --purge comeback-sync || fail "dpkg --purge failed"
installed=no
status=$(dpkg-query -W -f='${db:Status-Status}' comeback-sync 2>/dev/null || true)
[[ -z "$status" || "$status" == not-installed ]] || fail "after dpkg --purge the status is $status"
snapshot >"$work/purged"
if ! diff <(cat "$work/before") "$work/purged" >"$work/purge.diff"; then
    cat "$work/purge.diff" >&2
    fail "dpkg --purge left the machine different from before (above)"
fi
echo "ok: dpkg --purge leaves nothing"
