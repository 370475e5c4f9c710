#pragma once

// Clang thread-safety analysis attributes (-Wthread-safety). Under GCC they
// expand to nothing; the clang build configuration checks them.

// Abseil's legacy header defines the same unprefixed names; it is included
// first here (and its include guard keeps it from coming back later), so the
// definitions below are the ones in force wherever both are used.
#include <absl/base/internal/thread_annotations.h>
#undef CAPABILITY
#undef SCOPED_CAPABILITY
#undef GUARDED_BY
#undef PT_GUARDED_BY
#undef REQUIRES
#undef EXCLUDES
#undef ACQUIRE
#undef RELEASE
#undef NO_THREAD_SAFETY_ANALYSIS

#if defined(__clang__)
#define KEYFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define KEYFS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) KEYFS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY KEYFS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) KEYFS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) KEYFS_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) KEYFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) KEYFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) KEYFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) KEYFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS \
  KEYFS_THREAD_ANNOTATION(no_thread_safety_analysis)
