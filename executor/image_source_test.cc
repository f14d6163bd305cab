#include "executor/image_source.h"

#include <doctest/doctest.h>

#include "base/test_util.h"

namespace slipway::executor {
namespace {

TEST_CASE("image sources: references are normalised like Docker's") {
  CHECK(NormalizeReference("ubuntu") == "ubuntu:latest");
  CHECK(NormalizeReference("docker.io/library/ubuntu:22.04") == "ubuntu:22.04");
  CHECK(NormalizeReference("docker.io/me/app") == "me/app:latest");
  CHECK(NormalizeReference("localhost:5000/app") == "localhost:5000/app:latest");
  CHECK(NormalizeReference("localhost:5000/app:v1") == "localhost:5000/app:v1");
  CHECK(NormalizeReference("app@sha256:abc") == "app@sha256:abc");
  CHECK(ParsePlatform("linux/arm64/v8").variant == "v8");
  CHECK(ParsePlatform("linux/arm64").architecture == "arm64");
}

TEST_CASE("image sources: an unmapped image says how to map it; a bad source says what failed") {
  ImageSources s;
  testing::TempDir tmp;
  auto none = s.Load("alpine:3.19", {}, tmp.path());
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("no source for the image \"alpine:3.19\": map it with "
                                    "--image-source alpine:3.19=oci-layout:PATH") == 0);
  REQUIRE(s.Add("alpine:3.19=oci-layout:" + tmp.Join("missing")).ok());
  auto missing = s.Load("alpine:3.19", {}, tmp.path());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find("image alpine:3.19 (oci-layout:" + tmp.Join("missing") +
                                       ")") == 0);
  REQUIRE(s.Add("x=docker-archive:" + tmp.Join("none.tar")).ok());
  CHECK_FALSE(s.Load("x", {}, tmp.path()).ok());
}

TEST_CASE("image sources: a layer blob that does not match its digest is refused") {
  testing::TempDir tmp;
  const std::string rootfs = tmp.Join("rootfs");
  testing::WriteFile(rootfs + "/etc/hello", "hi");
  const std::string layout = tmp.Join("layout");
  auto m = testing::Run({testing::Runfile("integration/mkimage"), "--rootfs", rootfs,
                         "--oci-layout", layout});
  REQUIRE_MESSAGE(m.exit_code == 0, m.err);
  ImageSources s;
  REQUIRE(s.Add("img=oci-layout:" + layout + ":latest").ok());
  auto ok = s.Load("img", {}, tmp.path());
  REQUIRE_MESSAGE(ok.ok(), ok.error().ToString());
  REQUIRE(ok->layers.size() == 1);
  // Corrupt the layer blob (same size).
  const std::string blob = ok->layers[0].blob_path;
  std::string bytes = testing::ReadFile(blob);
  bytes[bytes.size() / 2] ^= 0x55;
  testing::WriteFile(blob, bytes);
  auto again = s.Load("img", {}, tmp.path());
  REQUIRE(again.ok());  // the check happens where the bytes are used
  auto bad = VerifyLayer(again->layers[0]);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message().find("not the " + ok->layers[0].digest + " its manifest names") !=
        std::string::npos);
  CHECK(VerifyLayer(ok->layers[0]).ok() == false);  // same file, same verdict
}

}  // namespace
}  // namespace slipway::executor
