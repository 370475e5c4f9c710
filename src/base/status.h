#pragma once

// Status and Result<T>: how every layer below the FUSE adapter reports errors.
//
// A Status is OK or carries an errno value plus an optional message. The errno is
// kept exactly (ENOSPC stays ENOSPC from the store up to the caller) and is turned
// into a FUSE reply in one place only, the adapter. Nothing in keyfs throws across
// a layer boundary; exceptions never reach libfuse.

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

namespace keyfs {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  // `err` is a positive errno value; `message` says what failed, for logs and
  // for the one line a user sees when a command fails.
  static Status Errno(int err, std::string message = {}) {
    return Status(err, std::move(message));
  }
  static Status InvalidArgument(std::string message) {
    return Status(EINVAL, std::move(message));
  }
  static Status IoError(std::string message) {
    return Status(EIO, std::move(message));
  }

  bool ok() const { return code_ == 0; }
  int code() const { return code_; }  // errno value, 0 when ok
  const std::string& message() const { return message_; }

  // "message: strerror" or just strerror when there is no message.
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context` (e.g. a file name).
  Status WithContext(std::string_view context) const;

 private:
  Status(int code, std::string message)
      : code_(code), message_(std::move(message)) {}

  int code_ = 0;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)), has_value_(true) {}  // NOLINT
  Result(Status status) : status_(std::move(status)) {}            // NOLINT

  bool ok() const { return has_value_; }
  const Status& status() const { return status_; }

  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  T& operator*() & { return value_; }
  const T& operator*() const& { return value_; }

 private:
  T value_{};
  Status status_;
  bool has_value_ = false;
};

}  // namespace keyfs

#define KEYFS_CONCAT_INNER(a, b) a##b
#define KEYFS_CONCAT(a, b) KEYFS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)              \
  do {                                     \
    ::keyfs::Status status_ = (expr);      \
    if (!status_.ok()) return status_;     \
  } while (0)

// ASSIGN_OR_RETURN(auto x, ComputeX()) declares x or returns the failure.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(KEYFS_CONCAT(result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
