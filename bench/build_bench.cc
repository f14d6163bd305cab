// build_bench: whole builds, Slipway and buildah side by side in one run.
//
//   bazel run -c opt //bench:build_bench [-- --rounds 3]      (as root)
//
// Two Dockerfiles on the Debian base (debootstrap'd once, cached in /var/cache/slipway-test):
//   groups   -- the issue's supplementary-groups Dockerfile (groupadd, useradd, id);
//   tenstep  -- a realistic 10-step RUN/COPY build (a 2,000-file source tree, 64 MiB of data,
//               a tarball, a deletion, a user, a checksum).
// For each, alternately and `rounds` times: Slipway cold (a new --cache-dir: the base is unpacked
// from its OCI layout), Slipway warm (again, with the base already unpacked in that cache; with
// and without writing an OCI layout), Slipway cold with --snapshot-mode walk (no overlayfs), then `buildah build --isolation chroot` with overlay storage and with vfs
// storage, each with a fresh storage root (cold: the base is pulled from the same OCI layout
// into the store first -- that pull is buildah's unpack -- and timed separately).
// Prints the median wall time of each, Slipway's phases (unpack, each step's run / snapshot /
// layer / commit, write) from its own --log-format json timing events, peak RSS (wait4's
// ru_maxrss: the largest process of the tree) and the ratios.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "integration/debian_base.h"

namespace {

using slipway::testing::TempDir;
using slipway::testing::WriteFile;

struct Timed {
  double seconds = 0;
  long max_rss_kib = 0;
  int exit_code = -1;
  std::string err;
};

// Runs argv with stdout to /dev/null and stderr captured; times it and takes wait4's rusage.
Timed RunTimed(const std::vector<std::string>& argv, const std::string& stderr_file) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);  // or the child's freopen would write our buffer a second time
  std::fflush(stderr);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout)) _exit(126);
    if (!freopen(stderr_file.c_str(), "w", stderr)) _exit(126);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru;
  wait4(pid, &status, 0, &ru);
  Timed t;
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.max_rss_kib = ru.ru_maxrss;
  t.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(stderr_file);
  std::stringstream ss;
  ss << in.rdbuf();
  t.err = ss.str();
  return t;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

const char kGroups[] = R"(FROM ubuntu:latest
RUN groupadd -g 20000 bar
RUN groupadd -g 10000 foo
RUN useradd -c "Foo user" -u 10000 -g 10000 -G bar -m foo
RUN id foo
USER foo
RUN id
)";

const char kTenStep[] = R"(FROM ubuntu:latest
COPY src/ /app/src/
RUN mkdir -p /app/build && find /app/src -name '*.c' | sort | xargs cat > /app/build/bundle.c
RUN useradd -m -u 1500 app && chown -R app:app /app
COPY config/ /etc/app/
RUN head -c 67108864 /dev/zero | tr '\0' 'x' > /app/data.bin
RUN tar -czf /app/src.tgz -C /app src
RUN rm -rf /app/src/module-0 /app/src/module-1
WORKDIR /app
RUN sha256sum /app/data.bin > /app/data.sha256 && ls -la /app > /app/listing.txt
)";

void MakeTenStepContext(const std::string& dir) {
  for (int m = 0; m < 20; ++m) {
    for (int f = 0; f < 100; ++f) {
      std::string body = "/* module " + std::to_string(m) + " file " + std::to_string(f) + " */\n";
      for (int l = 0; l < 40; ++l) body += "int f" + std::to_string(f) + "_" + std::to_string(l) + "(void) { return " + std::to_string(l * m) + "; }\n";
      WriteFile(dir + "/src/module-" + std::to_string(m) + "/file" + std::to_string(f) + ".c", body);
    }
  }
  WriteFile(dir + "/config/app.json", "{\"name\":\"bench\"}\n");
  WriteFile(dir + "/config/log.conf", "level=info\n");
}

struct Phases {
  std::map<std::string, std::vector<double>> by_name;  // "#3 RUN ... run" -> seconds per round
  std::vector<std::string> order;
};

void ParsePhases(const std::string& log, Phases* p) {
  std::map<std::string, std::string> names;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    const std::string ev = j.value("event", "");
    const std::string step = j.value("step", "");
    if (ev == "start") {
      std::string n = j.value("name", "");
      if (n.size() > 60) n = n.substr(0, 57) + "...";
      names[step] = n;
    } else if (ev == "timing") {
      for (const auto& [k, v] : j.items()) {
        if (k == "event" || k == "step") continue;
        const std::string key = names[step] + " | " + k;
        if (!p->by_name.count(key)) p->order.push_back(key);
        p->by_name[key].push_back(std::stod(v.get<std::string>()));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--rounds") rounds = std::max(1, std::atoi(argv[++i]));
  }
  if (geteuid() != 0) {
    std::fprintf(stderr, "build_bench: needs root (RUN steps chroot and switch users)\n");
    return 1;
  }
  std::string why;
  const std::string debian = slipway::testing::DebianBase(&why);
  if (debian.empty()) {
    std::fprintf(stderr, "build_bench: no Debian base: %s\n", why.c_str());
    return 1;
  }
  const std::string slipway_bin = std::filesystem::absolute("executor/slipway").string();
  const bool have_buildah = access("/usr/bin/buildah", X_OK) == 0;
  TempDir tmp("/var/tmp");
  std::printf("build_bench: %d round(s), alternating; Debian base %s\n", rounds, debian.c_str());
  if (!have_buildah) std::printf("buildah is not installed: Slipway only (tools/setup.sh installs it)\n");
  struct Case {
    const char* name;
    const char* dockerfile;
  };
  for (const Case& c : {Case{"groups", kGroups}, Case{"tenstep", kTenStep}}) {
    const std::string ctx = tmp.Join(std::string("ctx-") + c.name);
    WriteFile(ctx + "/Dockerfile", c.dockerfile);
    if (std::string(c.name) == "tenstep") MakeTenStepContext(ctx);
    std::vector<double> warm, warm_out;
    std::vector<double> sl, bo_pull, bo_build, bv_pull, bv_build;
    std::vector<double> walk;
    std::vector<long> sl_rss, bo_rss, bv_rss, walk_rss;
    Phases phases, walk_phases;
    for (int r = 0; r < rounds; ++r) {
      const std::string work = tmp.Join("work");
      std::filesystem::create_directories(work);
      const std::string out = tmp.Join("out-" + std::to_string(r));
      const std::string cache = tmp.Join("cache-" + std::to_string(r));  // cold: a new cache
      auto slipway = [&](bool output, bool walk = false) {
        std::vector<std::string> a = {slipway_bin, "-c", ctx, "--image-source",
                                      "ubuntu:latest=oci-layout:" + debian + ":bookworm",
                                      "--no-push", "--work-dir", work, "--cache-dir",
                                      walk ? cache + "-walk" : cache,
                                      "--log-format", "json", "--verbosity", "debug"};
        if (walk) {
          a.push_back("--snapshot-mode");
          a.push_back("walk");
        }
        if (output) {
          a.push_back("--oci-layout-path");
          a.push_back(out);
        }
        return RunTimed(a, tmp.Join("slipway.err"));
      };
      Timed s = slipway(true);
      if (s.exit_code != 0) {
        std::fprintf(stderr, "slipway failed (%d):\n%s\n", s.exit_code, s.err.c_str());
        return 1;
      }
      sl.push_back(s.seconds);
      sl_rss.push_back(s.max_rss_kib);
      ParsePhases(s.err, &phases);
      std::filesystem::remove_all(out);
      // Warm: the base is already unpacked in the cache.
      Timed w = slipway(false);
      Timed wo = slipway(true);
      if (w.exit_code != 0 || wo.exit_code != 0) {
        std::fprintf(stderr, "slipway (warm) failed:\n%s\n", (w.exit_code ? w : wo).err.c_str());
        return 1;
      }
      warm.push_back(w.seconds);
      warm_out.push_back(wo.seconds);
      std::filesystem::remove_all(out);
      std::filesystem::remove_all(cache);
      // Without overlayfs (an unprivileged pod): the base unpacked into a plain directory, each
      // step found by the metadata walk.
      Timed k = slipway(true, true);
      if (k.exit_code != 0) {
        std::fprintf(stderr, "slipway --snapshot-mode walk failed:\n%s\n", k.err.c_str());
        return 1;
      }
      walk.push_back(k.seconds);
      walk_rss.push_back(k.max_rss_kib);
      ParsePhases(k.err, &walk_phases);
      std::filesystem::remove_all(out);
      std::filesystem::remove_all(cache + "-walk");
      if (!have_buildah) continue;
      for (const char* driver : {"overlay", "vfs"}) {
        const std::string store = tmp.Join(std::string("store-") + driver);
        std::vector<std::string> base = {"buildah", "--root", store + "/root", "--runroot",
                                         store + "/run", "--storage-driver", driver};
        auto with = [&](std::vector<std::string> more) {
          std::vector<std::string> v = base;
          v.insert(v.end(), more.begin(), more.end());
          return v;
        };
        Timed pull = RunTimed(with({"pull", "-q", "oci:" + debian + ":bookworm"}), tmp.Join("b.err"));
        if (pull.exit_code != 0) {
          std::fprintf(stderr, "buildah pull (%s) failed:\n%s\n", driver, pull.err.c_str());
          return 1;
        }
        // The pulled image has no name; give it the one the Dockerfile uses.
        Timed images = RunTimed(with({"images", "-q"}), tmp.Join("b.err"));
        std::string id;
        {
          std::vector<std::string> ls = with({"images", "-q", "--no-trunc"});
          std::string cmd;
          for (const auto& a : ls) cmd += a + " ";
          std::fflush(stdout);
          FILE* f = popen(cmd.c_str(), "r");
          char buf[256] = {};
          if (f && fgets(buf, sizeof(buf), f)) id = buf;
          if (f) pclose(f);
          while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
        }
        (void)images;
        RunTimed(with({"tag", id, "docker.io/library/ubuntu:latest"}), tmp.Join("b.err"));
        Timed build = RunTimed(with({"build", "--isolation", "chroot", "--pull-never", "--layers=false",
                                     "-q", "-t", "bench-out", "-f", ctx + "/Dockerfile", ctx}),
                               tmp.Join("b.err"));
        if (build.exit_code != 0) {
          std::fprintf(stderr, "buildah build (%s) failed:\n%s\n", driver, build.err.c_str());
          return 1;
        }
        RunTimed(with({"rm", "-a"}), tmp.Join("b.err"));
        RunTimed({"/bin/sh", "-c", "umount -R " + store + "/root/overlay 2>/dev/null; true"},
                 tmp.Join("b.err"));
        std::filesystem::remove_all(store);
        if (std::string(driver) == "overlay") {
          bo_pull.push_back(pull.seconds);
          bo_build.push_back(build.seconds);
          bo_rss.push_back(std::max(pull.max_rss_kib, build.max_rss_kib));
        } else {
          bv_pull.push_back(pull.seconds);
          bv_build.push_back(build.seconds);
          bv_rss.push_back(std::max(pull.max_rss_kib, build.max_rss_kib));
        }
      }
    }
    std::printf("\n== %s (median of %d)\n", c.name, rounds);
    std::printf("Slipway phases:\n");
    for (const std::string& k : phases.order) {
      std::printf("  %-72s %8.3f s\n", k.c_str(), Median(phases.by_name[k]));
    }
    auto max_rss = [](const std::vector<long>& v) {
      return v.empty() ? 0L : *std::max_element(v.begin(), v.end());
    };
    const double s_med = Median(sl);
    std::printf("Slipway cold build:            %8.3f s   peak RSS %6ld KiB\n", s_med, max_rss(sl_rss));
    std::printf("Slipway warm build (base unpacked in the cache): %.3f s; with --oci-layout-path: "
                "%.3f s%s\n",
                Median(warm), Median(warm_out),
                std::string(c.name) == "groups" ? "  (goal <= 0.3 s)" : "");
    std::printf("Slipway without overlayfs (--snapshot-mode walk), cold: %.3f s   peak RSS %6ld KiB;"
                " its phases:\n",
                Median(walk), max_rss(walk_rss));
    for (const std::string& k : walk_phases.order) {
      std::printf("  %-72s %8.3f s\n", k.c_str(), Median(walk_phases.by_name[k]));
    }
    if (have_buildah) {
      const double bo = Median(bo_pull) + Median(bo_build), bv = Median(bv_pull) + Median(bv_build);
      std::printf("buildah overlay: pull %6.3f + build %6.3f = %8.3f s   peak RSS %6ld KiB\n",
                  Median(bo_pull), Median(bo_build), bo, max_rss(bo_rss));
      std::printf("buildah vfs:     pull %6.3f + build %6.3f = %8.3f s   peak RSS %6ld KiB\n",
                  Median(bv_pull), Median(bv_build), bv, max_rss(bv_rss));
      std::printf("ratio Slipway / buildah-overlay (cold, pull included): %.2fx  (goal <= 0.5x)\n",
                  s_med / bo);
      std::printf("ratio Slipway / buildah-overlay build only:            %.2fx\n",
                  s_med / Median(bo_build));
      std::printf("ratio Slipway / buildah-vfs (cold, pull included):     %.2fx\n", s_med / bv);
      std::printf("ratio Slipway walk / buildah-vfs (neither uses overlayfs): %.2fx\n",
                  Median(walk) / bv);
    }
  }
  return 0;
}
