#!/bin/sh
# The manual pages name the version configure.ac gives (the programs'
# --version), with a date man(1) and mandoc(1) can read, and render
# without a warning where groff or mandoc is installed.
top=${TOP_SRCDIR:-$(dirname "$0")/..}
fail() { echo "FAIL: $*"; exit 1; }

[ -n "$PE_VERSION" ] || fail "PE_VERSION is not set (make check sets it to \$(PACKAGE_VERSION))"
# The pages as the positional parameters: $top may hold a space (a source
# tree under "My Projects"), which a list in one string would split.
set -- "$top/man/poolechod.8" "$top/man/poolecho.1" "$top/man/libpoolecho.3"
for page in "$@"; do
	th=$(grep '^\.TH ' "$page") || fail "$page has no .TH line"
	echo "$th" | grep -q "\"poolecho $PE_VERSION\"" ||
		fail "$page does not name poolecho $PE_VERSION: $th"
	echo "$th" | grep -Eq '^\.TH [A-Z]+ [0-9] [0-9]{4}-[0-9]{2}-[0-9]{2} ' ||
		fail "$page: its date is not YYYY-MM-DD: $th"
done
echo "PASS: every page names poolecho $PE_VERSION and a date"

# libpoolecho(3) is the map of the public headers: each function, type
# (typedef, struct and enum tag) and macro they give a program is named in
# it, so that a reader of the page alone knows what there is to call and set.
# PE_API (the export attribute) and the include guards are not for programs.
missing=
for name in $(cat "$top"/include/poolecho/*.h |
	sed -n -e 's/.*\(pe_[a-z_]*\) *(.*/\1/p' \
	       -e 's/.*typedef .*[ *]\(pe_[a-z_]*\)[;(].*/\1/p' \
	       -e 's/.*typedef .*[ *]\(pe_[a-z_]*\)$/\1/p' \
	       -e 's/^\(struct\|enum\) \(pe_[a-z_]*\) *{.*/\1 \2/p' \
	       -e 's/^#define \(PE_[A-Z0-9_]*\).*/\1/p' |
	sed 's/ /_SP_/' | grep -v '^PE_API$' | sort -u); do
	word=$(echo "$name" | sed 's/_SP_/ /')
	# The page sets a struct's or enum's tag in bold (\fBstruct\fR, .B ...):
	# strip the font escapes, and take the words as groff would join them.
	sed -e 's/\\f[BIRP]//g' -e 's/^\.[A-Z][A-Z]* //' "$top/man/libpoolecho.3" |
		tr '\n' ' ' | grep -qF -- "$word" || missing="$missing
  $word"
done
[ -z "$missing" ] || fail "libpoolecho(3) does not name these of include/poolecho/:$missing"
echo "PASS: libpoolecho(3) names every function, type and macro of the headers"

checked=
if command -v groff > /dev/null 2>&1; then
	out=$(groff -man -ww -z "$@" 2>&1) || fail "groff -man -ww failed: $out"
	[ -z "$out" ] || fail "groff -man -ww: $out"
	# man(1) on an 80-column terminal (MANWIDTH=80) sets lines of 78: a
	# longer one (in .nf, where groff neither breaks nor warns) wraps.
	out=$(groff -man -Tascii -rLL=78n -P-cbou "$@" 2>/dev/null | awk 'length > 78')
	[ -z "$out" ] || fail "lines wider than 78 columns, which wrap at MANWIDTH=80:
$out"
	checked="$checked groff"
fi
if command -v mandoc > /dev/null 2>&1; then
	out=$(mandoc -T lint -W warning "$@" 2>&1)
	[ -z "$out" ] || fail "mandoc -T lint: $out"
	checked="$checked mandoc"
fi
[ -n "$checked" ] ||
	{ echo "SKIP: neither groff nor mandoc is installed: the pages are not rendered"; exit 77; }
echo "PASS: no warning from$checked"
