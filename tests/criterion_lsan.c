/*
 * criterion_lsan.c -- linked into every Criterion test program: keeps
 * Criterion's own occasional leak from failing a suite under ASan.
 */
#include "helpers.h"

#ifdef TH_HAVE_LSAN
/* Criterion 2.4.1's runner now and then leaks one 48-byte request of its
 * timeout watchdog (BoxFort's bxfi_push_timeout) when tests with .timeout
 * end at the same time, and LeakSanitizer's check at the runner's exit then
 * fails the suite although every test passed (seen in test_client, then in
 * test_server). Suppressing leaks allocated from libcriterion costs nothing
 * here: a test process's own leak report never changes its verdict, and the
 * tests catch the library's leaks themselves (TH_ASSERT_NO_LEAKS) and the
 * programs' in their stderr. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libcriterion.so\n";
}
#else
/* ISO C wants something in every translation unit. */
typedef int th_criterion_lsan_unused;
#endif
