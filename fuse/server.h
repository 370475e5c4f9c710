#pragma once

// Server: one mounted keyfs. Owns, in this order of construction, the memory
// budget, the keyspace, the event loop, the reply queue, the FUSE adapter and
// the mounted session, and wires them: the session fd and signals into the
// loop, the reply flush into before-sleep, cron on a 10 Hz timer.
//
// Threading: created and run on the main thread, which then is the loop thread.

#include <memory>

#include "fuse/fuse_adapter.h"
#include "fuse/fuse_session.h"
#include "fuse/options.h"
#include "src/base/clock.h"
#include "src/base/memory_accountant.h"
#include "src/keyspace/keyspace.h"
#include "src/loop/event_loop.h"
#include "src/loop/reply_queue.h"

namespace keyfs {

class Server {
 public:
  // Mounts. The signals must already be blocked in this and every thread.
  static Result<std::unique_ptr<Server>> Start(const MountOptions& options);
  ~Server();

  // Serves until unmounted from outside or told to stop by a signal; then
  // unmounts. OK in both cases.
  Status Run();

 private:
  explicit Server(const MountOptions& options);
  void Cron();
  void OnSignal(int signo);

  const MountOptions options_;
  const Clock* const clock_;
  MemoryAccountant memory_;
  Keyspace keyspace_;
  std::unique_ptr<EventLoop> loop_;
  ReplyQueue replies_;
  FuseAdapter adapter_;
  std::unique_ptr<FuseSession> session_;
  int64_t last_memory_warning_ = 0;  // monotonic ns
};

}  // namespace keyfs
