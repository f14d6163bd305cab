#include "base/result.h"

#include <cerrno>
#include <cstring>

namespace slipway {

Error& Error::AddContext(std::string_view context) {
  std::string m;
  m.reserve(context.size() + 2 + message_.size());
  m.append(context).append(": ").append(message_);
  message_ = std::move(m);
  return *this;
}

std::string Error::ToString() const {
  if (errno_ == 0) return message_;
  return message_ + ": " + std::strerror(errno_);
}

Error ErrnoError(std::string message) { return Error(std::move(message), errno); }
Error ErrnoError(std::string message, int errno_value) {
  return Error(std::move(message), errno_value);
}

}  // namespace slipway
