#pragma once

// Logging goes through spdlog's default logger. The mount program configures
// it once at start-up: stderr in the foreground, a file (the store directory's
// keyfs.log unless log=FILE says otherwise) when daemonized.

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "src/base/status.h"

namespace keyfs {

// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off".
Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name);
// The name ParseLogLevel takes for `level` ("warn", not spdlog's "warning").
std::string_view LogLevelName(spdlog::level::level_enum level);

// Sends logs to `file` (appending), or to stderr when `file` is empty.
Status ConfigureLogging(const std::string& file, spdlog::level::level_enum level);

}  // namespace keyfs
