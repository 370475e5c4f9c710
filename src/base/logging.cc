#include "src/base/logging.h"

#include <syslog.h>

#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>

namespace keyfs {

namespace {

// spdlog's basic_file_sink, with a reopen: the file is opened anew and, only
// once that worked, takes the old one's place under the sink's lock.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(const std::string& path) : path_(path), file_(Open(path)) {}

  const std::string& path() const { return path_; }
  void Reopen() {
    auto file = Open(path_);  // throws spdlog_ex, leaving the old file in use
    std::lock_guard<std::mutex> lock(mutex_);
    file_ = std::move(file);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_->write(formatted);
  }
  void flush_() override { file_->flush(); }

 private:
  static std::unique_ptr<spdlog::details::file_helper> Open(const std::string& path) {
    auto file = std::make_unique<spdlog::details::file_helper>();
    file->open(path, /*truncate=*/false);
    return file;
  }

  const std::string path_;
  std::unique_ptr<spdlog::details::file_helper> file_;
};

// Set once by ConfigureLogging, before other threads run; used by the loop
// thread (SIGHUP) after.
std::shared_ptr<ReopenableFileSink> file_sink;
bool to_stderr = true;

}  // namespace

Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "critical") return spdlog::level::critical;
  if (name == "off") return spdlog::level::off;
  return Status::InvalidArgument(fmt::format(
      "'{}' is not a log level (trace, debug, info, warn, error, critical, off)", name));
}

std::string_view LogLevelName(spdlog::level::level_enum level) {
  if (level == spdlog::level::warn) return "warn";
  auto name = spdlog::level::to_string_view(level);
  return std::string_view(name.data(), name.size());
}

Status ConfigureLogging(const std::string& target, spdlog::level::level_enum level) {
  std::shared_ptr<spdlog::logger> logger;
  file_sink.reset();
  to_stderr = target.empty();
  try {
    if (target.empty()) {
      logger = std::make_shared<spdlog::logger>(
          "keyfs", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else if (target == kSyslogTarget) {
      // syslog adds the time, host, "keyfs[pid]:" and the priority (from
      // the level); the line is the message alone.
      auto sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("keyfs", LOG_PID, LOG_DAEMON,
                                                                  /*enable_formatting=*/false);
      logger = std::make_shared<spdlog::logger>("keyfs", std::move(sink));
    } else {
      file_sink = std::make_shared<ReopenableFileSink>(target);
      logger = std::make_shared<spdlog::logger>("keyfs", file_sink);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError("cannot open log file " + target + ": " + e.what());
  }
  logger->set_level(level);
  if (target != kSyslogTarget) logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  // Info lines (mount, unmount, rewrite progress) reach the file within a second.
  spdlog::flush_every(std::chrono::seconds(1));
  return Status::Ok();
}

Status ReopenLog() {
  if (!file_sink) return Status::Ok();
  try {
    file_sink->Reopen();
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError(fmt::format("cannot reopen log file {}: {}", file_sink->path(), e.what()));
  }
  return Status::Ok();
}

std::string LogFilePath() { return file_sink ? file_sink->path() : std::string(); }

bool LoggingToStderr() { return to_stderr; }

}  // namespace keyfs
