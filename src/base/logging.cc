#include "src/base/logging.h"

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace keyfs {

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

Status ConfigureLogging(const std::string& file, spdlog::level::level_enum level) {
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (file.empty()) {
      logger = std::make_shared<spdlog::logger>(
          "keyfs", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          "keyfs", std::make_shared<spdlog::sinks::basic_file_sink_mt>(file));
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IoError("cannot open log file " + file + ": " + e.what());
  }
  logger->set_level(level);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %v");
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  // Info lines (mount, unmount, rewrite progress) reach the file within a second.
  spdlog::flush_every(std::chrono::seconds(1));
  return Status::Ok();
}

}  // namespace keyfs
