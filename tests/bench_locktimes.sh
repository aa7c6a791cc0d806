#!/bin/sh
# bench/locktimes times the queue's lock in a copy of src/queue.c that it
# instruments by pattern, and refuses to run when a lock or a wait escapes
# the patterns. Check here that they still fit today's queue.c and that the
# copy builds, so that a change to the queue breaks this test and not the
# next measurement (a refactoring of the waits once broke it unnoticed).
top=${TOP_SRCDIR:-$(dirname "$0")/..}
cc=${PE_CC:-cc}
[ "$(uname -m)" = x86_64 ] ||
	{ echo "SKIP: bench/locktimes needs an x86-64 host (the time-stamp counter)"; exit 77; }
case $($cc -dumpmachine 2>/dev/null) in
x86_64-*|i?86-*) ;;
*) echo "SKIP: bench/locktimes needs an x86 compiler; this build's is '$cc'"; exit 77 ;;
esac
command -v bash > /dev/null 2>&1 ||
	{ echo "SKIP: bash is not installed (bench/locktimes is written in it)"; exit 77; }
CC=$cc exec bash "$top/bench/locktimes" --check
