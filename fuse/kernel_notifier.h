#pragma once

// KernelNotifier: tells the kernel about names keyfs removed by itself (a
// file whose lifetime ended), so that `ls` and the kernel's dentry cache see
// them gone at once and inotify watchers of the directory get IN_DELETE
// (fuse_lowlevel_notify_delete).
//
// Why a thread of its own: the kernel applies such a notification under the
// lock of the parent directory. A process creating or removing a file in
// that directory holds that lock while it waits for keyfs's reply. Were the
// loop thread to write the notification, it would wait for a lock that
// waits for the loop: a deadlock. This thread may wait; the loop goes on
// answering, the request ends, the lock is released, the notification goes
// in.
//
// Order: notifications are written in the order posted. One about a name
// that meanwhile names a new file is harmless: the kernel deletes the cached
// entry only if it still points at the removed inode; otherwise it merely
// drops it, and the next access looks the name up again.
//
// At the end (Stop), what is not yet written is dropped (the mount is going
// away), and a notification still waiting for a lock gets a few seconds;
// then the connection is aborted, which fails the request holding the lock,
// so that keyfs can exit.
//
// Threading: Post() and Stop() on the loop thread; the queue is under mu_;
// the session outlives the notifier.

#include <cstdint>
#include <deque>
#include <string>
#include <thread>

#include "fuse/fuse_session.h"
#include "src/base/mutex.h"
#include "src/base/thread_annotations.h"

namespace keyfs {

class KernelNotifier {
 public:
  explicit KernelNotifier(FuseSession* session);
  ~KernelNotifier() { Stop(); }
  KernelNotifier(const KernelNotifier&) = delete;
  KernelNotifier& operator=(const KernelNotifier&) = delete;

  // `child`, named `name` in `parent`, is gone.
  void Post(uint64_t parent, uint64_t child, std::string name);
  void Stop();

  uint64_t sent() const;

 private:
  struct Removal {
    uint64_t parent = 0, child = 0;
    std::string name;
  };
  static constexpr int kStopWaitSeconds = 5;
  void Run();

  FuseSession* const session_;
  mutable Mutex mu_;
  CondVar wake_;     // work queued, or stopping
  CondVar stopped_;  // the thread is done
  std::deque<Removal> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  bool done_ GUARDED_BY(mu_) = false;
  uint64_t sent_ GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace keyfs
