#!/usr/bin/env bash
# README.md is what an operator reads first, so it stays at most 12 KiB, and
# every relative link in README.md and docs/*.md reaches a file and, when it
# names one, a heading of that file (GitHub's anchors: lower case, punctuation
# dropped, spaces as hyphens, -1, -2... for repeats).
#   links_test.sh SOURCE_DIR
set -euo pipefail
export LC_ALL=C.UTF-8
root=$1
limit=12288
status=0
fail() { echo "FAIL: $*" >&2; status=1; }

size=$(wc -c <"$root/README.md")
((size <= limit)) || fail "README.md is $size bytes, more than $limit: move detail into docs/"
echo "README.md: $size bytes (limit $limit)"

# Markdown without fenced code blocks, where links and headings are not markup.
prose() { awk '/^```/ { fenced = !fenced; next } !fenced' "$1"; }

# The anchors of a file's headings, one a line.
anchors() {
    prose "$1" | sed -n 's/^#\{1,6\} \{1,\}//p' | while IFS= read -r heading; do
        heading=${heading,,}
        heading=$(sed 's/[^[:alnum:] _-]//g; s/ /-/g' <<<"$heading")
        echo "$heading"
    done | awk '{ n = seen[$0]++; print (n ? $0 "-" n : $0) }'
}

pages=("$root/README.md" "$root"/docs/*.md)
links=0
for page in "${pages[@]}"; do
    dir=$(dirname "$page")
    name=${page#"$root"/}
    # Inline links [text](target); code spans cannot hold one here.
    while IFS= read -r target; do
        [[ -z $target || $target =~ ^[a-z]+: ]] && continue  # http:, https:, mailto:, file:
        links=$((links + 1))
        file=${target%%#*}
        anchor=
        [[ $target == *"#"* ]] && anchor=${target#*#}
        if [[ -z $file ]]; then
            path=$page
        else
            path=$dir/$file
        fi
        if [[ ! -e $path ]]; then
            fail "$name links to $target: $file does not exist"
            continue
        fi
        if [[ -n $anchor ]]; then
            [[ $path == *.md ]] || { fail "$name links to $target: an anchor in a file that is not Markdown"; continue; }
            anchors "$path" | grep -qxF -- "$anchor" ||
                fail "$name links to $target: no heading of ${path#"$root"/} has the anchor #$anchor"
        fi
    done < <(prose "$page" | sed 's/`[^`]*`//g' | grep -o '\](\([^)]*\))' | sed 's/^](//; s/)$//')
done
((links > 0)) || fail "found no relative links at all; the link extraction is broken"
((status == 0)) && echo "ok: $links relative links in ${#pages[@]} pages resolve"
exit $status
