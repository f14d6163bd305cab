// Dockerfile front-end benchmark: parse + plan (every expansion, every stage) of a generated
// 20,000-line Dockerfile. Prints throughput, time per run and the peak memory it added.
//
//   bazel run -c opt //bench:dockerfile_bench
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "dockerfile/plan.h"

namespace {

long PeakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "VmHWM:") {
      in >> value;
      return value;
    }
    std::getline(in, key);
  }
  return 0;
}

std::string Generate(int lines) {
  std::string t = "# syntax=docker/dockerfile:1\nARG BASE=debian:12\nARG VERSION=1.0\n";
  int n = 3, stage = 0;
  while (n < lines) {
    t += "FROM ${BASE} AS s" + std::to_string(stage) + "\nARG VERSION\n";
    n += 2;
    for (int i = 0; i < 40 && n < lines; ++i) {
      switch (i % 8) {
        case 0:
          t += "ENV P" + std::to_string(i) + "=/opt/app-${VERSION}/bin:$PATH Q=\"quoted $HOME\"\n";
          ++n;
          break;
        case 1:
          t += "RUN apt-get update \\\n    && apt-get install -y curl git \\\n    && rm -rf "
               "/var/lib/apt/lists/*\n";
          n += 3;
          break;
        case 2:
          t += "COPY --chown=app:app --chmod=0644 src/${VERSION%%.*}/a src/b /srv/app/\n";
          ++n;
          break;
        case 3:
          t += "RUN --mount=type=cache,target=/root/.cache,sharing=locked make -j4 "
               "V=${VERSION:-0}\n";
          ++n;
          break;
        case 4:
          t += "LABEL org.example.version=$VERSION org.example.stage=s" + std::to_string(stage) +
               "\n";
          ++n;
          break;
        case 5:
          t += "RUN <<EOF\nset -e\necho building $VERSION\nEOF\n";
          n += 4;
          break;
        case 6:
          t += "WORKDIR /srv/${VERSION/./_}/w" + std::to_string(i) + "\n";
          ++n;
          break;
        default:
          t += stage > 0 ? "COPY --from=s" + std::to_string(stage - 1) + " /srv /srv\n"
                         : "USER 1000:1000\n";
          ++n;
          break;
      }
    }
    ++stage;
  }
  return t;
}

}  // namespace

int main() {
  using Clock = std::chrono::steady_clock;
  const std::string text = Generate(20000);
  const long rss_before = PeakRssKiB();
  constexpr int kRuns = 20;
  double best = 1e9;
  std::size_t stages = 0, instructions = 0;
  for (int i = 0; i < kRuns; ++i) {
    auto t0 = Clock::now();
    auto plan = slipway::dockerfile::PlanDockerfile(text, "Dockerfile", {});
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!plan.ok()) {
      std::fprintf(stderr, "plan failed: %s\n", plan.error().ToString().c_str());
      return 1;
    }
    stages = plan->stages.size();
    instructions = 0;
    for (const auto& st : plan->stages) instructions += st.instructions.size();
    if (s < best) best = s;
  }
  const long rss_after = PeakRssKiB();
  std::printf("dockerfile benchmark: 20000 lines, %.2f MiB, %zu stages, %zu instructions\n",
              text.size() / 1048576.0, stages, instructions);
  std::printf("parse + plan: %.2f ms (best of %d), %.0f MB/s\n", best * 1e3, kRuns,
              text.size() / best / 1e6);
  std::printf("peak RSS: %ld KiB before, %ld KiB after (+%ld KiB)\n", rss_before, rss_after,
              rss_after - rss_before);
  return 0;
}
