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
  std::string s = message_;
  if (errno_ != 0) s.append(": ").append(std::strerror(errno_));
  if (!hint_.empty()) s.append(" (").append(hint_).append(")");
  return s;
}

Error ErrnoError(std::string message) { return Error(std::move(message), errno); }
Error ErrnoError(std::string message, int errno_value) {
  return Error(std::move(message), errno_value);
}

}  // namespace slipway
