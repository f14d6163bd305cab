#include "base/result.h"

#include <doctest/doctest.h>

#include <cerrno>

namespace slipway {
namespace {

Result<int> Half(int v) {
  if (v % 2) return Error("odd value " + std::to_string(v), EINVAL);
  return v / 2;
}

Result<int> Quarter(int v) {
  SLIPWAY_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

Result<void> CheckEven(int v) {
  SLIPWAY_RETURN_IF_ERROR(Half(v));
  return Ok{};
}

TEST_CASE("result: values pass through and errors propagate with their errno") {
  CHECK(Quarter(8).value() == 2);
  auto r = Quarter(6);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message() == "odd value 3");
  CHECK(r.error().errno_value() == EINVAL);
  CHECK(CheckEven(4).ok());
  CHECK_FALSE(CheckEven(5).ok());
}

TEST_CASE("result: context is prefixed and errno text appended") {
  Error e("opening /etc/passwd", ENOENT);
  e.AddContext("USER app");
  CHECK(e.ToString() == "USER app: opening /etc/passwd: No such file or directory");
  CHECK(Error("plain").ToString() == "plain");
  Error hinted("setting supplementary groups [1 2]", EPERM);
  hinted.SetHint("no CAP_SETGID in this user namespace");
  CHECK(hinted.ToString() ==
        "setting supplementary groups [1 2]: Operation not permitted (no CAP_SETGID in this user "
        "namespace)");
}

}  // namespace
}  // namespace slipway
