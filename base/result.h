// Result<T>: the error vocabulary of Slipway's parent-side code.
//
// A Result holds either a value or an Error. An Error carries a human-readable message (already
// naming the action and the object), an optional errno, and grows context as it travels up:
//
//   Result<Fd> OpenConfig(...) {
//     SLIPWAY_ASSIGN_OR_RETURN(Fd fd, OpenInRoot(root, "/etc/passwd", O_RDONLY));
//     ...
//   }
//   if (!r.ok()) std::cerr << r.error().ToString();  // "reading /etc/passwd: No such file ..."
//
// Guarantees: no exceptions are thrown by these types; they allocate (never use them between fork
// and exec). Not thread-safe beyond the usual value-type rules.
#ifndef SLIPWAY_BASE_RESULT_H_
#define SLIPWAY_BASE_RESULT_H_

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace slipway {

class Error {
 public:
  explicit Error(std::string message, int errno_value = 0)
      : message_(std::move(message)), errno_(errno_value) {}

  // The message without the errno text.
  const std::string& message() const { return message_; }
  // The errno that caused this error, or 0 when none did.
  int errno_value() const { return errno_; }

  // Prefixes "context: " to the message. Returns *this for chaining.
  Error& AddContext(std::string_view context);

  // A hint for the user, shown after the errno text: "(are user namespaces enabled?)".
  Error& SetHint(std::string hint) {
    hint_ = std::move(hint);
    return *this;
  }
  const std::string& hint() const { return hint_; }

  // "message: strerror(errno) (hint)" (the errno and hint parts only when present).
  std::string ToString() const;

 private:
  std::string message_;
  int errno_;
  std::string hint_;
};

// An Error built from the current errno.
Error ErrnoError(std::string message);
Error ErrnoError(std::string message, int errno_value);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  Error& error() & { return std::get<1>(v_); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Ok) {}                                                  // NOLINT: implicit by design
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  bool ok() const { return ok_; }
  Error& error() & { return error_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_{""};
  bool ok_ = true;
};

}  // namespace slipway

#define SLIPWAY_CONCAT_INNER_(a, b) a##b
#define SLIPWAY_CONCAT_(a, b) SLIPWAY_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function if it failed.
#define SLIPWAY_RETURN_IF_ERROR(expr)                           \
  do {                                                          \
    auto&& slipway_r_ = (expr);                                 \
    if (!slipway_r_.ok()) return std::move(slipway_r_).error(); \
  } while (0)

// `lhs = value of expr`, or returns its error from the enclosing function.
#define SLIPWAY_ASSIGN_OR_RETURN(lhs, expr) \
  SLIPWAY_ASSIGN_OR_RETURN_IMPL_(SLIPWAY_CONCAT_(slipway_r_, __LINE__), lhs, expr)
#define SLIPWAY_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return std::move(tmp).error();        \
  lhs = std::move(tmp).value()

#endif  // SLIPWAY_BASE_RESULT_H_
