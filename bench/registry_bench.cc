// registry_bench: push and pull a ~500 MiB image to a local docker-registry with Slipway's
// client and with `skopeo copy`, alternately in one run, and a rebuild with a warm layer cache.
//
//   bazel run -c opt //bench:registry_bench [-- --rounds 3 --mib 500]     (as root)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "image/oci.h"
#include "image/reference.h"
#include "image/registry.h"
#include "image/registry_test_util.h"

namespace {

using namespace slipway;

double Seconds(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3, mib = 500;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--rounds") rounds = std::max(1, std::atoi(argv[++i]));
    if (std::string(argv[i]) == "--mib") mib = std::max(1, std::atoi(argv[++i]));
  }
  testing::TempDir tmp("/var/tmp");
  testing::RegistryServer server(tmp.Join("registry"), "", "");
  const std::string host = server.host();
  // The image: mostly incompressible data (a pseudo-random stream), in 64 MiB files.
  std::printf("making a %d MiB image...\n", mib);
  std::fflush(stdout);
  const std::string rootfs = tmp.Join("rootfs");
  // busybox (for the rebuild's RUN steps), then the data.
  if (testing::Run({"/bin/sh", "integration/busybox_rootfs.sh", rootfs}).exit_code != 0) return 1;
  std::filesystem::create_directories(rootfs + "/data");
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> block(1 << 20);  // 8 MiB
  for (int f = 0; f * 64 < mib; ++f) {
    FILE* out = std::fopen((rootfs + "/data/f" + std::to_string(f)).c_str(), "wb");
    for (int m = 0; m < std::min(64, mib - f * 64); m += 8) {
      for (auto& w : block) w = rng();
      std::fwrite(block.data(), 1, std::min<std::size_t>(8u << 20, static_cast<std::size_t>(std::min(64, mib - f * 64) - m) << 20), out);
    }
    std::fclose(out);
  }
  const std::string layout = tmp.Join("oci");
  auto mk = testing::Run({"integration/mkimage", "--rootfs", rootfs, "--oci-layout", layout});
  if (mk.exit_code != 0) {
    std::fprintf(stderr, "mkimage failed: %s\n", mk.err.c_str());
    return 1;
  }
  auto l = image::OciLayout::Open(layout);
  auto img = l->Resolve("", {});
  std::vector<image::PushBlob> blobs;
  std::int64_t bytes = 0;
  for (const auto& d : img->manifest.layers) {
    blobs.push_back({d.digest, d.media_type, l->BlobPath(d.digest), d.size, ""});
    bytes += d.size;
  }
  const auto& c = img->manifest.config;
  blobs.push_back({c.digest, c.media_type, l->BlobPath(c.digest), c.size, ""});
  const std::string manifest = *l->ReadBlob(img->manifest_descriptor.digest);
  const double mibs = static_cast<double>(bytes) / (1 << 20);
  std::printf("compressed layer: %.1f MiB\n", mibs);

  image::RegistryOptions o;
  o.insecure_registries = {host};
  std::vector<double> our_push, sk_push, our_pull, sk_pull;
  for (int r = 0; r < rounds; ++r) {
    auto t = std::chrono::steady_clock::now();
    image::Registry reg(o);
    auto ref = image::ParseReference(host + "/ours" + std::to_string(r) + "/img:1");
    auto pushed = reg.Push(*ref, blobs, manifest, image::kMediaTypeManifest);
    if (!pushed.ok()) {
      std::fprintf(stderr, "push failed: %s\n", pushed.error().ToString().c_str());
      return 1;
    }
    our_push.push_back(Seconds(t));
    // skopeo remembers where it has seen blobs and would mount instead of uploading: start it
    // without that memory, as our client starts without any.
    for (const char* c : {"/var/lib/containers/cache/blob-info-cache-v1.boltdb",
                          "/var/lib/containers/cache/blob-info-cache-v1.sqlite"}) {
      std::filesystem::remove(c);
    }
    t = std::chrono::steady_clock::now();
    auto sk = testing::Run({"/usr/bin/skopeo", "copy", "--dest-tls-verify=false", "oci:" + layout,
                            "docker://" + host + "/skopeo" + std::to_string(r) + "/img:1"});
    if (sk.exit_code != 0) {
      std::fprintf(stderr, "skopeo push failed: %s\n", sk.err.c_str());
      return 1;
    }
    sk_push.push_back(Seconds(t));
    t = std::chrono::steady_clock::now();
    image::Registry puller(o);
    auto pulled = puller.Pull(*ref, {}, tmp.Join("pull-" + std::to_string(r)));
    if (!pulled.ok()) {
      std::fprintf(stderr, "pull failed: %s\n", pulled.error().ToString().c_str());
      return 1;
    }
    our_pull.push_back(Seconds(t));
    t = std::chrono::steady_clock::now();
    auto skp = testing::Run({"/usr/bin/skopeo", "copy", "--src-tls-verify=false",
                             "docker://" + host + "/skopeo" + std::to_string(r) + "/img:1",
                             "oci:" + tmp.Join("skopeo-pull-" + std::to_string(r)) + ":x"});
    if (skp.exit_code != 0) {
      std::fprintf(stderr, "skopeo pull failed: %s\n", skp.err.c_str());
      return 1;
    }
    sk_pull.push_back(Seconds(t));
    std::filesystem::remove_all(tmp.Join("pull-" + std::to_string(r)));
    std::filesystem::remove_all(tmp.Join("skopeo-pull-" + std::to_string(r)));
  }
  std::printf("\n%.1f MiB to/from docker-registry on 127.0.0.1, median of %d (alternating):\n", mibs,
              rounds);
  std::printf("  push  Slipway %6.2f s (%6.1f MiB/s)   skopeo copy %6.2f s (%6.1f MiB/s)   ratio %.2fx "
              "(goal >= 1x)\n",
              Median(our_push), mibs / Median(our_push), Median(sk_push), mibs / Median(sk_push),
              Median(sk_push) / Median(our_push));
  std::printf("  pull  Slipway %6.2f s (%6.1f MiB/s)   skopeo copy %6.2f s (%6.1f MiB/s)   ratio %.2fx "
              "(goal >= 1x)\n",
              Median(our_pull), mibs / Median(our_pull), Median(sk_pull), mibs / Median(sk_pull),
              Median(sk_pull) / Median(our_pull));

  // A rebuild with a warm layer cache in the registry: only the changed step runs.
  const std::string base_ref = host + "/bench/base:1";
  image::Registry reg(o);
  if (!reg.Push(*image::ParseReference(base_ref), blobs, manifest, image::kMediaTypeManifest).ok()) {
    return 1;
  }
  if (geteuid() != 0) {
    std::printf("(not root: skipping the warm-cache rebuild, whose RUN steps need root)\n");
    return 0;
  }
  const std::string ctx = tmp.Join("ctx");
  testing::WriteFile(ctx + "/Dockerfile",
                     "FROM " + base_ref + "\nRUN sha256sum /data/f0 > /sum0\nCOPY a.txt /a.txt\n"
                     "RUN cat /data/f0 /data/f0 > /double\nCOPY b.txt /b.txt\nRUN ls -la / > /listing\n");
  testing::WriteFile(ctx + "/a.txt", "a\n");
  testing::WriteFile(ctx + "/b.txt", "b1\n");
  auto build = [&]() {
    auto t = std::chrono::steady_clock::now();
    auto b = testing::Run({"executor/slipway", "-c", ctx, "--insecure-registry", host, "--cache",
                           "--cache-repo", host + "/bench/cache", "--no-push", "--cache-dir",
                           tmp.Join("cache")});
    int cached = 0;
    for (std::size_t p = 0; (p = b.err.find("(CACHED", p)) != std::string::npos; ++p) ++cached;
    if (b.exit_code != 0) {
      std::fprintf(stderr, "the rebuild failed:\n%s\n", b.err.c_str());
      std::exit(1);
    }
    return std::make_pair(Seconds(t), cached);
  };
  auto cold = build();
  auto warm = build();
  testing::WriteFile(ctx + "/b.txt", "b2\n");
  auto changed = build();
  std::printf("\nrebuild with the layer cache in the registry (5 steps):\n");
  std::printf("  cold %.2f s (%d cached); warm %.2f s (%d cached); after changing b.txt %.2f s "
              "(%d cached: only the steps from COPY b.txt on run)\n",
              cold.first, cold.second, warm.first, warm.second, changed.first, changed.second);
  return 0;
}
