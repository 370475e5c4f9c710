#include "src/base/status.h"

#include <cstring>

namespace keyfs {

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string reason = std::strerror(code_);
  if (message_.empty()) return reason;
  return message_ + ": " + reason;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  if (!message_.empty()) message += ": " + message_;
  return Status(code_, std::move(message));
}

}  // namespace keyfs
