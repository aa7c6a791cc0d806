#!/bin/sh
# Stands in for the Criterion suites when configure did not build them:
# exit 77 makes the harness report SKIP, so a missing library never passes
# silently. Switched off on purpose is not the same as not found, nor as
# found but not linkable for the host (a cross build).
if [ "${PE_ENABLE_TESTS-}" = no ]; then
	echo "SKIP: the Criterion suites are off: configure was run with --disable-tests (re-run it without, or with --enable-tests)"
elif [ -n "${PE_CRITERION_UNLINKABLE-}" ]; then
	echo "SKIP: the Criterion suites are not built: $PE_CRITERION_UNLINKABLE (a cross build needs the host's libcriterion-dev)"
else
	echo "SKIP: Criterion was not found at configure time (apt-get install libcriterion-dev, then re-run configure)"
fi
exit 77
