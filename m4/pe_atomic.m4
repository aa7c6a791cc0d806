# PE_CHECK_ATOMIC64: find how to link the 64-bit atomics of the counters
# (_Atomic uint64_t: src/stats.h, the client's load counters). Where the
# CPU has no 64-bit atomic instructions (armel's ARMv5, 32-bit MIPS and
# PowerPC) gcc and clang compile them into calls to libatomic's
# __atomic_load_8 and the like, and link it only when told to.
# Sets ATOMIC_LIBS (empty, or -latomic) and adds it to LIBS.
AC_DEFUN([PE_CHECK_ATOMIC64], [
  AC_CACHE_CHECK([for the library 64-bit atomics need], [pe_cv_atomic64_libs], [
    pe_cv_atomic64_libs=no
    pe_save_LIBS=$LIBS
    for pe_lib in "" "-latomic"; do
      LIBS="$pe_lib $pe_save_LIBS"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <stdatomic.h>
#include <stdint.h>
_Atomic uint64_t pe_probe;]],
        [[uint64_t v = atomic_load_explicit(&pe_probe, memory_order_acquire);
          atomic_store_explicit(&pe_probe, v + 1, memory_order_release);
          atomic_fetch_add_explicit(&pe_probe, 1, memory_order_relaxed);
          return !atomic_compare_exchange_weak(&pe_probe, &v, v + 1);]])],
        [pe_cv_atomic64_libs=${pe_lib:-none needed}; break])
    done
    LIBS=$pe_save_LIBS
  ])
  AS_CASE([$pe_cv_atomic64_libs],
    [no], [AC_MSG_ERROR([64-bit atomics (_Atomic uint64_t load, store, fetch_add, compare_exchange) do not link for $host, not even with -latomic: poolecho's counters need them (on Debian: libatomic1, or libatomic1-ARCH-cross when cross-compiling; config.log says why it failed)])],
    ["none needed"], [ATOMIC_LIBS=],
    [ATOMIC_LIBS=$pe_cv_atomic64_libs])
  AS_IF([test -n "$ATOMIC_LIBS"], [LIBS="$ATOMIC_LIBS $LIBS"])
  AC_SUBST([ATOMIC_LIBS])
])
