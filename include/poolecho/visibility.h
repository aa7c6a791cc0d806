/*
 * poolecho/visibility.h -- PE_API marks the functions libpoolecho exports;
 * the library is built with -fvisibility=hidden so nothing else leaks out.
 */
#ifndef POOLECHO_VISIBILITY_H
#define POOLECHO_VISIBILITY_H

#if defined(__GNUC__) || defined(__clang__)
#define PE_API __attribute__((visibility("default")))
#else
#define PE_API
#endif

#endif /* POOLECHO_VISIBILITY_H */
