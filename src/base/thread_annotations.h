#pragma once

// Clang thread-safety analysis attributes (-Wthread-safety). Under GCC they
// expand to nothing; the clang build configuration checks them.

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
