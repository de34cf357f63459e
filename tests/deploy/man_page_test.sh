#!/usr/bin/env bash
# comeback-sync(1) is written by hand; this keeps it true to the binary. Every
# subcommand --help lists has a section naming each of its options (and no
# option it lacks), the global options are in OPTIONS, EXIT STATUS lists
# exactly the codes of daemon/exit_codes.hpp, the header carries the version,
# and man renders the page without a warning.
#   man_page_test.sh BINARY MAN_PAGE EXIT_CODES_HPP
set -euo pipefail
binary=$1 page=$2 codes=$3
fail() { echo "FAIL: $*" >&2; status=1; }
status=0

# The page as text: escapes that print a hyphen become one, font changes go.
text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' "$page")
# The lines of one .SH or .SS section, up to the next heading of any kind.
section() { awk -v kind="$1" -v name="$2" '
    /^\.S[HS] / { on = ($1 == kind && substr($0, 5) == name); next }
    on' <<<"$text"; }
# The option names (-c, --config) of a --help output's Options section.
options_of() { awk '
    /^[A-Za-z]+:$/ { in_options = ($0 == "Options:"); next }
    in_options && /^  -/ { n = split($1, names, ","); for (i = 1; i <= n; i++) print names[i] }' |
    LC_ALL=C sort -u; }

help=$("$binary" --help)
mapfile -t subcommands < <(awk '/^[A-Za-z]+:$/ { on = ($0 == "Subcommands:"); next } on && /^  [a-z]/ { print $1 }' <<<"$help")
((${#subcommands[@]} >= 5)) || { echo "FAIL: found only ${#subcommands[@]} subcommands in --help:" >&2; echo "$help" >&2; exit 1; }

for sub in "${subcommands[@]}"; do
    body=$(section .SS "$sub")
    [[ -n "$body" ]] || { fail "no '.SS $sub' section for subcommand $sub"; continue; }
    grep -qx "\.B comeback-sync $sub" <<<"$(section .SH SYNOPSIS)" || fail "SYNOPSIS has no line for $sub"
    mapfile -t options < <("$binary" "$sub" --help | options_of | grep -vx -e -h -e --help)
    ((${#options[@]} >= 1)) || fail "$sub --help lists no option"
    for option in "${options[@]}"; do
        grep -qE -- "(^|[ ,])$option([ ,]|$)" <<<"$body" || fail "section $sub does not document $option"
    done
    for documented in $(grep -oE -- '(^|[ ,])--?[a-z][a-z-]*' <<<"$body" | tr -d ' ,' | LC_ALL=C sort -u); do
        grep -qxF -- "$documented" <<<"$(printf '%s\n' "${options[@]}")" ||
            fail "section $sub documents $documented, which $sub --help does not list"
    done
done
echo "checked ${#subcommands[@]} subcommands: ${subcommands[*]}"

global=$(section .SH OPTIONS)
for option in $(options_of <<<"$help" | grep -vx -e -h); do
    grep -qE -- "(^|[ ,])$option([ ,]|$)" <<<"$global" || fail "OPTIONS does not document $option"
done

mapfile -t expected < <(sed -n 's/^ *exit_[a-z_]* *= *\([0-9]*\),.*/\1/p' "$codes")
((${#expected[@]} >= 3)) || fail "found only ${#expected[@]} exit codes in $codes"
listed=$(section .SH "EXIT STATUS" | awk 'prev == ".TP" && $1 == ".B" { print $2 } { prev = $1 }' | LC_ALL=C sort -u)
[[ "$listed" == "$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort -u)" ]] ||
    fail "EXIT STATUS lists codes '$(echo $listed)', daemon/exit_codes.hpp defines '${expected[*]}'"

version=$("$binary" --version)
grep -q "^\.TH COMEBACK-SYNC 1 .*\"${version}\"" "$page" || fail ".TH does not carry '$version'"

if command -v man >/dev/null; then
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    [[ -z "$warnings" ]] || fail "man reports: $warnings"
else
    fail "man not found; scripts/bootstrap installs man-db"
fi
((status == 0)) && echo "ok"
exit $status
