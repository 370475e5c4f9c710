#pragma once

// ExpiryAgent: a thread that acts on the mount from outside for files whose
// lifetime ended (issue 13 item 1), as a user's shell would.
//
// Two jobs:
//  - Unlink: the cron hands it every path of a due file, and it removes
//    them with unlinkat(2) through the mount, never leaving it (see
//    UnlinkBeneath: this thread may be root, and a user may replace a
//    directory on the way by a symlink after the path was taken). The kernel then does what it
//    does for any rm: sends keyfs an UNLINK (journaled like a user's),
//    drops its cached name, and tells inotify watchers of the directory
//    (IN_DELETE). The kernel tells watchers only of what passes through
//    its own unlink: a FUSE notification (below) updates its cache but is
//    not an event. The adapter knows the agent's requests by their thread
//    id (tid()): its lookups see due files, and its unlinks remove only
//    files that are due (a name reused meanwhile by a new file is left
//    alone: ENOENT). `done(ok)` then runs on the loop thread; not ok (a
//    permission, a rename meanwhile) and the keyspace removes the file
//    itself.
//  - NotifyRemoved: names keyfs removed itself (a lookup that met a due
//    file, an agent unlink that failed): fuse_lowlevel_notify_delete, so
//    the kernel drops names it had cached.
//
// Why a thread, not the loop: both are calls into the kernel that wait for
// the parent directory's lock, which a request waiting for the loop may
// hold (a create in that directory); the unlink also waits for keyfs's own
// reply. On the loop thread either would wait for itself. This thread may
// wait; the loop goes on answering.
//
// Stopping: RequestStop() takes no more work and calls back on the loop
// thread once the job in hand is done (the loop still answers it), so a
// SIGTERM never cuts a job short. Stop() joins; should a job still be stuck
// after a few seconds (the loop no longer runs), it aborts the FUSE
// connection, which fails the request the job waits for.
//
// Threading: Unlink, NotifyRemoved, RequestStop and Stop on the loop
// thread; the queue under mu_; callbacks go back through EventLoop::Post.
// The session and the loop outlive the agent.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fuse/fuse_session.h"
#include "src/base/mutex.h"
#include "src/base/thread_annotations.h"
#include "src/loop/event_loop.h"

namespace keyfs {

class ExpiryAgent {
 public:
  // `mountpoint`: where `session` is mounted.
  ExpiryAgent(FuseSession* session, EventLoop* loop, std::string mountpoint);
  ~ExpiryAgent() { Stop(); }
  ExpiryAgent(const ExpiryAgent&) = delete;
  ExpiryAgent& operator=(const ExpiryAgent&) = delete;

  // Removes `paths` (relative to the mount's root: "dir/file") and then
  // calls `done(ok)` on the loop thread: ok when every one was removed.
  void Unlink(std::vector<std::string> paths, std::function<void(bool ok)> done);
  // `child`, named `name` in `parent`, is gone.
  void NotifyRemoved(uint64_t parent, uint64_t child, std::string name);
  // The agent's thread id: requests that carry it are the agent's.
  pid_t tid() const { return tid_.load(std::memory_order_acquire); }
  void RequestStop(std::function<void()> stopped);
  // Drops what is queued and takes no more (the mount is gone: the paths
  // would name whatever is there now).
  void Drop();
  void Stop();

  struct Stats {
    uint64_t unlinked = 0;      // paths removed through the mount
    uint64_t unlink_failed = 0;  // paths the keyspace had to remove itself
    uint64_t notified = 0;      // names the kernel was told of
    uint64_t notify_dropped = 0;  // notifications beyond kMaxQueued
  };
  Stats stats() const;

  // unlinkat of `path` ("a/b/name") under the directory `root`, resolving
  // "a/b" with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV):
  // no symlink, no "..", no other mount on the way. 0 or an errno.
  static int UnlinkBeneath(int root, const std::string& path);

 private:
  struct Job {
    std::vector<std::string> paths;        // an unlink...
    std::function<void(bool)> done;
    uint64_t parent = 0, child = 0;        // ...or a notification
    std::string name;
  };
  static constexpr int kStopWaitSeconds = 5;
  // Jobs waiting at most (a million files ending at once go by the
  // keyspace's own removal; a notification beyond this is dropped, and the
  // kernel keeps that name until it looks it up again).
  static constexpr size_t kMaxQueued = 65536;
  void Enqueue(Job job);
  void StopTakingWork() REQUIRES(mu_);
  void Run();
  void RunJob(Job& job);
  // The mount's root, opened for one job (an fd kept open would keep the
  // mount busy: umount would fail) and checked to be this mount's root, not
  // one mounted over it since; -1 if it cannot be.
  int OpenRoot();

  FuseSession* const session_;
  EventLoop* const loop_;
  const std::string mountpoint_;
  bool warned_root_ = false;  // the agent's thread only
  std::atomic<pid_t> tid_{0};
  mutable Mutex mu_;
  CondVar wake_;     // work queued, or stopping
  CondVar stopped_;  // the thread is done
  std::deque<Job> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::function<void()> on_stopped_ GUARDED_BY(mu_);
  bool done_ GUARDED_BY(mu_) = false;
  Stats stats_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace keyfs
