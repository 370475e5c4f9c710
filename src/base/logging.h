#pragma once

// Logging goes through spdlog's default logger. The mount program configures
// it once at start-up: stderr in the foreground, a file (the store directory's
// keyfs.log unless log=FILE says otherwise) when daemonized, or syslog
// (log=syslog: ident "keyfs", facility daemon, spdlog's syslog sink).
//
// A log file can be reopened (SIGHUP, what logrotate's postrotate sends):
// the sink opens the file again by name, so lines go to the new file from
// then on. Lines are written whole under the sink's lock, so none is split
// between the two files.

#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "src/base/status.h"

namespace keyfs {

// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off".
Result<spdlog::level::level_enum> ParseLogLevel(std::string_view name);
// The name ParseLogLevel takes for `level` ("warn", not spdlog's "warning").
std::string_view LogLevelName(spdlog::level::level_enum level);

// The log target that means syslog (a log file's path is always absolute).
inline constexpr std::string_view kSyslogTarget = "syslog";

// Sends logs to `target`: a file (appending), kSyslogTarget, or stderr when
// empty. Once, before any thread logs.
Status ConfigureLogging(const std::string& target, spdlog::level::level_enum level);

// Opens the log file again by its name (after logrotate moved it away). The
// old file stays in use if the new one cannot be opened (the error says
// why). Nothing to do, and OK, when logging goes to stderr or syslog.
Status ReopenLog();
// The log file's path; empty for stderr or syslog.
std::string LogFilePath();
// Whether logs go to stderr (keyfs -f without log=).
bool LoggingToStderr();

}  // namespace keyfs
