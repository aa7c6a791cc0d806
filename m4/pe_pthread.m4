# PE_CHECK_PTHREAD: find how to compile and link POSIX threads.
# Sets PTHREAD_CFLAGS and PTHREAD_LIBS. -pthread is tried first (gcc, clang);
# plain -lpthread is the fallback for compilers without it.
AC_DEFUN([PE_CHECK_PTHREAD], [
  AC_CACHE_CHECK([how to use POSIX threads], [pe_cv_pthread], [
    pe_cv_pthread=no
    pe_save_CFLAGS=$CFLAGS
    pe_save_LIBS=$LIBS
    for pe_flag in "-pthread" "-lpthread"; do
      CFLAGS="$pe_save_CFLAGS $pe_flag"
      LIBS="$pe_flag $pe_save_LIBS"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <pthread.h>
static void *f(void *a) { return a; }]],
        [[pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0);
          pthread_cond_t c; pthread_cond_init(&c, 0);]])],
        [pe_cv_pthread=$pe_flag; break])
    done
    CFLAGS=$pe_save_CFLAGS
    LIBS=$pe_save_LIBS
  ])
  AS_IF([test "x$pe_cv_pthread" = xno],
        [AC_MSG_ERROR([POSIX threads are required but none were found])])
  AS_CASE([$pe_cv_pthread],
    [-pthread], [PTHREAD_CFLAGS=-pthread; PTHREAD_LIBS=-pthread],
    [PTHREAD_CFLAGS=; PTHREAD_LIBS=$pe_cv_pthread])
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
