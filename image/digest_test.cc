#include "image/digest.h"

#include <doctest/doctest.h>

namespace slipway::image {
namespace {

TEST_CASE("digest: sha256 of known inputs, streamed or at once") {
  CHECK(Sha256Digest("") ==
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Digest("abc") ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.Update("a");
  h.Update("bc");
  CHECK(h.Digest() == Sha256Digest("abc"));
  CHECK(IsSha256Digest(Sha256Digest("x")));
  CHECK_FALSE(IsSha256Digest("sha256:ABC"));
  CHECK_FALSE(IsSha256Digest("sha512:" + std::string(64, 'a')));
}


TEST_CASE("digest: base64 both ways, padding included") {
  CHECK(Base64Encode("") == "");
  CHECK(Base64Encode("f") == "Zg==");
  CHECK(Base64Encode("fo") == "Zm8=");
  CHECK(Base64Encode("foo") == "Zm9v");
  CHECK(Base64Encode("user:p@ss") == "dXNlcjpwQHNz");
  for (const std::string& s : {std::string(), std::string("f"), std::string("fo"),
                                std::string("foo"), std::string("\x00\xff bytes", 8)}) {
    CHECK(Base64Decode(Base64Encode(s)) == s);
  }
  CHECK(Base64Decode("not base64!") == "");
}
}  // namespace
}  // namespace slipway::image
