#include "fuse/fuse_session.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/sysmacros.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/mutex.h"
#include "src/loop/event_loop.h"

namespace keyfs {

namespace {

// Requests handled per call of ProcessAvailable: then the loop looks at its
// other sources (IO completions, timers) before reading more.
constexpr int kBatchBudget = 64;

// libfuse's room for a request's headers next to max_write bytes of data
// (FUSE_BUFFER_HEADER_SIZE): what the kernel needs a read to offer.
constexpr size_t kRequestHeaderRoom = 4096;

// The sessions using custom IO, by fd: libfuse hands the custom writev the
// fd and the filesystem's userdata, not the session.
Mutex sessions_mu;
std::vector<std::pair<int, FuseSession*>>& SessionsByFd() {
  static std::vector<std::pair<int, FuseSession*>> sessions;
  return sessions;
}

// The undo of the reply being sent on this thread (ReplyOrUndo), taken by
// WriteReply when it queues the reply.
thread_local std::function<void()>* reply_undo = nullptr;

void LogReplyFailure(int error) {
  // ENOENT: the request was interrupted and the kernel no longer waits for
  // it; ENODEV: unmounted meanwhile. libfuse keeps quiet about both too.
  if (error != ENOENT && error != ENODEV) {
    spdlog::warn("a reply to the kernel failed: {}", strerror(error));
  }
}

// Set while a notification is written (FuseSession::NotifyDelete): custom
// IO writes it straight to the fd instead of queueing it in the loop's ring,
// which belongs to the loop thread.
thread_local bool writing_notification = false;

// The device (st_dev) of the FUSE mount at `mountpoint`, from
// /proc/self/mountinfo (a stat of the mountpoint would ask this very
// filesystem, which is not serving yet); 0 when not found.
dev_t MountDevice(const std::string& mountpoint) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  dev_t device = 0;
  for (std::string line; std::getline(mountinfo, line);) {
    // id parent major:minor root mountpoint options ... - type source ...
    std::istringstream fields(line);
    std::string id, parent, numbers, root, point;
    fields >> id >> parent >> numbers >> root >> point;
    // The filesystem type follows " - ": fuse, or fuse.SUBTYPE (not fuseblk).
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::string_view type = std::string_view(line).substr(dash + 3);
    type = type.substr(0, type.find(' '));
    if (type != "fuse" && !type.starts_with("fuse.")) continue;
    // Octal escapes (\040 for a space) as the kernel writes them.
    std::string unescaped;
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        unescaped += static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        unescaped += point[i];
      }
    }
    unsigned major_number = 0, minor_number = 0;
    if (unescaped == mountpoint &&
        std::sscanf(numbers.c_str(), "%u:%u", &major_number, &minor_number) == 2) {
      device = makedev(major_number, minor_number);  // the last one is the newest
    }
  }
  return device;
}

FuseSession* FindSession(int fd) {
  MutexLock lock(&sessions_mu);
  for (auto& [session_fd, session] : SessionsByFd()) {
    if (session_fd == fd) return session;
  }
  return nullptr;
}

// Joins options into one "-o" argument, escaping commas inside values.
std::string JoinOptions(const std::vector<std::string>& options) {
  std::string joined;
  for (const auto& option : options) {
    if (!joined.empty()) joined += ',';
    for (char c : option) {
      if (c == ',' || c == '\\') joined += '\\';
      joined += c;
    }
  }
  return joined;
}

}  // namespace

void ReplyOrUndo(const std::function<int()>& send, std::function<void()> undo) {
  reply_undo = &undo;
  int result = send();
  reply_undo = nullptr;
  if (result != 0 && undo) undo();  // written at once, and failed
}

Result<std::unique_ptr<FuseSession>> FuseSession::Mount(
    const std::string& mountpoint, const std::vector<std::string>& kernel_options,
    bool debug, const fuse_lowlevel_ops& ops, void* userdata) {
  std::string option_list = JoinOptions(kernel_options);
  std::vector<const char*> argv = {"keyfs", "-o", option_list.c_str()};
  if (debug) argv.push_back("-d");
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()),
                                  const_cast<char**>(argv.data()));
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), userdata);
  fuse_opt_free_args(&args);
  if (!session) {
    return Status::InvalidArgument("libfuse refused the mount options: " + option_list);
  }
  // The path the kernel lists the mount under (mountinfo): resolved now,
  // while resolving it does not ask this filesystem.
  std::string canonical = mountpoint;
  if (char* resolved = realpath(mountpoint.c_str(), nullptr)) {
    canonical = resolved;
    free(resolved);
  }
  if (fuse_session_mount(session, mountpoint.c_str()) != 0) {
    fuse_session_destroy(session);
    return Status::IoError("cannot mount at " + mountpoint +
                           " (is it an existing directory, and may this user mount there?)");
  }
  int fd = fuse_session_fd(session);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<FuseSession>(new FuseSession(session, MountDevice(canonical)));
}

FuseSession::~FuseSession() {
  {
    MutexLock lock(&sessions_mu);
    std::erase_if(SessionsByFd(), [this](const auto& entry) { return entry.second == this; });
  }
  Unmount();
  fuse_session_destroy(session_);
  free(buffer_.mem);
}

Status FuseSession::Attach(EventLoop* loop, unsigned max_write,
                           std::function<void()> on_unmounted) {
  loop_ = loop;
  on_unmounted_ = std::move(on_unmounted);
  if (!loop->uses_io_uring()) {
    return loop->WatchReadable(fd(), [this] {
      if (!ProcessAvailable(kBatchBudget)) on_unmounted_();
    });
  }
  fuse_custom_io io{};
  io.writev = &FuseSession::WriteReply;
  io.read = &FuseSession::ReadRequest;
  if (int res = fuse_session_custom_io(session_, &io, fd()); res < 0) {
    return Status::Errno(-res, "fuse_session_custom_io");
  }
  {
    MutexLock lock(&sessions_mu);
    SessionsByFd().emplace_back(fd(), this);
  }
  loop->set_write_error_handler([](int, int error) { LogReplyFailure(error); });
  request_.resize(max_write + kRequestHeaderRoom);
  return loop->WatchReads(fd(), request_, [this](ssize_t result) { return OnRingRead(result); });
}

ssize_t FuseSession::WriteReply(int fd, iovec* iov, int count, void*) {
  FuseSession* session = FindSession(fd);
  if (session == nullptr || writing_notification) return writev(fd, iov, count);
  if (reply_undo == nullptr || !*reply_undo) return session->loop_->Writev(fd, iov, count);
  // Handed to the loop with the reply, and left empty here: if the loop
  // writes it at once, the result tells ReplyOrUndo, and the loop drops it.
  auto undo = std::make_shared<std::function<void()>>(std::move(*reply_undo));
  *reply_undo = nullptr;
  ssize_t result = session->loop_->Writev(fd, iov, count, [undo](int error) {
    LogReplyFailure(error);
    (*undo)();
  });
  if (result < 0) *reply_undo = std::move(*undo);  // failed at once: ReplyOrUndo undoes
  return result;
}

ssize_t FuseSession::ReadRequest(int fd, void* buffer, size_t length, void*) {
  return read(fd, buffer, length);
}

bool FuseSession::OnRingRead(ssize_t result) {
  if (result == -ENOENT) return true;  // interrupted before it was read: read again
  if (result <= 0 || fuse_session_exited(session_)) {
    // 0 or ENODEV: unmounted from outside.
    if (result < 0 && result != -ENODEV) {
      spdlog::error("reading from /dev/fuse failed: {}", strerror(static_cast<int>(-result)));
    }
    on_unmounted_();
    return false;
  }
  if (static_cast<size_t>(result) < sizeof(fuse_in_header)) {
    spdlog::error("short read from /dev/fuse ({} bytes)", result);
    return true;
  }
  fuse_buf request{};
  request.size = static_cast<size_t>(result);
  request.mem = request_.data();
  bool open;
  if (IsBulkRead(request)) {
    // The first of a batch of bulk reads: read the rest of the queue the
    // direct way, so that what is behind them is answered first.
    std::memcpy(set_aside_.emplace_back().data(), request_.data(), request.size);
    open = ProcessAvailable(kBatchBudget);
  } else {
    fuse_session_process_buf(session_, &request);
    open = !fuse_session_exited(session_);
    if (open && gather_ && gather_()) open = ProcessAvailable(kBatchBudget);
  }
  if (!open) on_unmounted_();
  return open;
}

bool FuseSession::ProcessAvailable(int budget) {
  bool open = true;
  for (int i = 0; i < budget; ++i) {
    int res = fuse_session_receive_buf(session_, &buffer_);
    if (res == -EAGAIN) break;  // drained
    if (res == -EINTR) continue;
    if (res <= 0 || fuse_session_exited(session_)) {
      // 0 (or ENODEV, which libfuse turns into 0): unmounted from outside.
      if (res < 0) spdlog::error("reading from /dev/fuse failed: {}", strerror(-res));
      open = false;
      break;
    }
    buffer_.size = static_cast<size_t>(res);
    if (IsBulkRead(buffer_)) {
      std::memcpy(set_aside_.emplace_back().data(), buffer_.mem, static_cast<size_t>(res));
      continue;
    }
    fuse_session_process_buf(session_, &buffer_);
  }
  AnswerSetAsideReads();
  return open;
}

bool FuseSession::IsBulkRead(const fuse_buf& buffer) {
  // Only a request that is in memory (not spliced) and of a READ's size.
  size_t bytes = buffer.size;
  if ((buffer.flags & FUSE_BUF_IS_FD) || bytes > sizeof(SetAsideRead) ||
      bytes < sizeof(fuse_in_header) + sizeof(fuse_read_in)) {
    return false;
  }
  fuse_in_header header;
  fuse_read_in read;
  std::memcpy(&header, buffer.mem, sizeof(header));
  std::memcpy(&read, static_cast<const char*>(buffer.mem) + sizeof(header), sizeof(read));
  return header.opcode == FUSE_READ && header.len == bytes && read.size > kBulkReadBytes;
}

void FuseSession::AnswerSetAsideReads() {
  for (SetAsideRead& read : set_aside_) {
    fuse_in_header header;
    std::memcpy(&header, read.data(), sizeof(header));
    fuse_buf request{};
    request.size = header.len;
    request.mem = read.data();
    fuse_session_process_buf(session_, &request);
  }
  set_aside_.clear();  // keeps its capacity for the next batch
}

int FuseSession::NotifyDelete(uint64_t parent, uint64_t child, const std::string& name) {
  // (libfuse sends the name with its terminating NUL: a std::string has one)
  writing_notification = true;
  int result = fuse_lowlevel_notify_delete(session_, parent, child, name.data(), name.size());
  writing_notification = false;
  return result;
}

void FuseSession::AbortConnection() {
  // fusectl names a connection by the mount's device number (major 0).
  std::string path = fmt::format("/sys/fs/fuse/connections/{}/abort", minor(device_));
  int fd = device_ == 0 ? -1 : open(path.c_str(), O_WRONLY | O_CLOEXEC);
  bool aborted = fd >= 0 && write(fd, "1", 1) == 1;
  if (fd >= 0) close(fd);
  if (aborted) return;
  // Without the fuse control filesystem (a container): let go of /dev/fuse,
  // which ends the connection once nothing else holds it.
  spdlog::error("could not abort the FUSE connection through {} ({}); closing /dev/fuse "
                "instead", path, device_ == 0 ? "the mount was not found" : strerror(errno));
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, this->fd());
    close(null);
  }
}

void FuseSession::Unmount() {
  if (!mounted_) return;
  mounted_ = false;
  fuse_session_unmount(session_);
}

}  // namespace keyfs
