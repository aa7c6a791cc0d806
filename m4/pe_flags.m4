# PE_CHECK_CFLAG(FLAG, ACTION-IF-OK): does the C compiler accept FLAG?
# -Werror makes gcc and clang fail on unknown warning options instead of warning.
AC_DEFUN([PE_CHECK_CFLAG], [
  AS_VAR_PUSHDEF([pe_var], [pe_cv_cflag_$1])
  AC_CACHE_CHECK([whether $CC accepts $1], [pe_var], [
    pe_save_CFLAGS=$CFLAGS
    CFLAGS="$CFLAGS -Werror $1"
    AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
                      [AS_VAR_SET([pe_var], [yes])], [AS_VAR_SET([pe_var], [no])])
    CFLAGS=$pe_save_CFLAGS])
  AS_VAR_IF([pe_var], [yes], [$2])
  AS_VAR_POPDEF([pe_var])
])

# PE_WARN_CFLAGS(WERROR): the warning set every build uses; WERROR=yes adds -Werror.
AC_DEFUN([PE_WARN_CFLAGS], [
  WARN_CFLAGS=
  for pe_w in -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes \
              -Wmissing-prototypes -Wformat=2 -Wwrite-strings -Wvla -Wundef \
              -Wcast-qual -Wmissing-declarations -Wnull-dereference \
              -Wimplicit-fallthrough; do
    PE_CHECK_CFLAG([$pe_w], [WARN_CFLAGS="$WARN_CFLAGS $pe_w"])
  done
  AS_IF([test "x$1" = xyes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
  AC_SUBST([WARN_CFLAGS])
])

# PE_SANITIZERS(LIST): SAN_CFLAGS/SAN_LDFLAGS for LIST (address,undefined or thread).
# UBSan must not recover, or a report would not fail the test that caused it.
AC_DEFUN([PE_SANITIZERS], [
  SAN_CFLAGS=
  SAN_LDFLAGS=
  san_thread=no
  AS_CASE([$1],
    [no|""], [],
    [thread], [SAN_CFLAGS="-fsanitize=thread -g -O1"; san_thread=yes],
    [address|undefined|address,undefined|undefined,address],
      [SAN_CFLAGS="-fsanitize=$1 -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"],
    [AC_MSG_ERROR([--enable-sanitizers=$1: expected address,undefined or thread])])
  AS_IF([test -n "$SAN_CFLAGS"], [
    SAN_LDFLAGS=`echo "$SAN_CFLAGS" | sed 's/ -g -O1//'`
    pe_save_CFLAGS=$CFLAGS
    pe_save_LDFLAGS=$LDFLAGS
    CFLAGS="$CFLAGS $SAN_CFLAGS"
    LDFLAGS="$LDFLAGS $SAN_LDFLAGS"
    AC_MSG_CHECKING([whether $CC links with $SAN_LDFLAGS])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])], [AC_MSG_RESULT([yes])],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([--enable-sanitizers=$1: the compiler cannot link sanitizer runtimes (libasan, libubsan, libtsan)])])
    CFLAGS=$pe_save_CFLAGS
    LDFLAGS=$pe_save_LDFLAGS])
  AC_SUBST([SAN_CFLAGS])
  AC_SUBST([SAN_LDFLAGS])
  AM_CONDITIONAL([SANITIZE_THREAD], [test "x$san_thread" = xyes])
  AM_CONDITIONAL([SANITIZE_ANY], [test -n "$SAN_CFLAGS"])
])

# PE_YES_OR_NO(FEATURE, VALUE): refuse --enable-FEATURE=VALUE unless VALUE
# is yes or no (--disable-FEATURE gives no).
AC_DEFUN([PE_YES_OR_NO], [
  AS_CASE([$2],
    [yes|no], [],
    [AC_MSG_ERROR([--enable-$1=$2: expected yes or no])])
])

# PE_GC_SECTIONS: GC_CFLAGS and GC_LDFLAGS, each function and object in a
# section of its own and the linker dropping those nothing calls, where
# the compiler and the linker take them (GNU ld, gold, lld); else empty.
AC_DEFUN([PE_GC_SECTIONS], [
  GC_CFLAGS=
  GC_LDFLAGS=
  PE_CHECK_CFLAG([-ffunction-sections -fdata-sections], [
    AC_CACHE_CHECK([whether the linker takes -Wl,--gc-sections], [pe_cv_ld_gc_sections], [
      pe_save_LDFLAGS=$LDFLAGS
      LDFLAGS="$LDFLAGS -Wl,--gc-sections"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
                     [pe_cv_ld_gc_sections=yes], [pe_cv_ld_gc_sections=no])
      LDFLAGS=$pe_save_LDFLAGS])
    AS_IF([test "x$pe_cv_ld_gc_sections" = xyes],
      [GC_CFLAGS="-ffunction-sections -fdata-sections"
       GC_LDFLAGS="-Wl,--gc-sections"])])
  AC_SUBST([GC_CFLAGS])
  AC_SUBST([GC_LDFLAGS])
])
