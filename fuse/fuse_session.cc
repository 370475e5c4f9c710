#include "fuse/fuse_session.h"

#include <fcntl.h>
#include <linux/fuse.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

namespace keyfs {

namespace {

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
  if (fuse_session_mount(session, mountpoint.c_str()) != 0) {
    fuse_session_destroy(session);
    return Status::IoError("cannot mount at " + mountpoint +
                           " (is it an existing directory, and may this user mount there?)");
  }
  int fd = fuse_session_fd(session);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<FuseSession>(new FuseSession(session));
}

FuseSession::~FuseSession() {
  Unmount();
  fuse_session_destroy(session_);
  free(buffer_.mem);
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
    if (IsBulkRead(static_cast<size_t>(res))) {
      std::memcpy(set_aside_.emplace_back().data(), buffer_.mem, static_cast<size_t>(res));
      continue;
    }
    fuse_session_process_buf(session_, &buffer_);
  }
  AnswerSetAsideReads();
  return open;
}

bool FuseSession::IsBulkRead(size_t bytes) const {
  // Only a request that is in memory (not spliced) and of a READ's size.
  if ((buffer_.flags & FUSE_BUF_IS_FD) || bytes > sizeof(SetAsideRead) ||
      bytes < sizeof(fuse_in_header) + sizeof(fuse_read_in)) {
    return false;
  }
  fuse_in_header header;
  fuse_read_in read;
  std::memcpy(&header, buffer_.mem, sizeof(header));
  std::memcpy(&read, static_cast<const char*>(buffer_.mem) + sizeof(header), sizeof(read));
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

void FuseSession::Unmount() {
  if (!mounted_) return;
  mounted_ = false;
  fuse_session_unmount(session_);
}

}  // namespace keyfs
