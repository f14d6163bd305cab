// Snapshot benchmark, one run, figures side by side:
//   1. extract a generated base layer (100k files, gzip) vs `tar -xzf` of the same layer;
//   2. snapshot after changing 1 file in that 100k-file root: the metadata walk vs a baseline that
//      hashes every file's contents (kaniko's approach);
//   3. layer write throughput for ~1 GiB of mixed files vs `tar | gzip` and `tar | pigz`;
//   4. peak memory of the process (the 100k-file manifests included).
//
//   bazel run -c opt //bench:snapshot_bench [-- --files N --gib X]
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "image/digest.h"
#include "snapshot/extract.h"
#include "snapshot/layer_writer.h"
#include "snapshot/overlay.h"
#include "snapshot/walk.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace slipway;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long PeakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string k;
  while (in >> k) {
    if (k == "VmHWM:") {
      long v;
      in >> v;
      return v;
    }
    std::getline(in, k);
  }
  return 0;
}

double Shell(const std::string& cmd) {
  auto t = Clock::now();
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
    return -1;
  }
  return Since(t);
}

void WriteFile(const std::string& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

// A tree of `files` files in 1000 directories, sized like a distribution's files: most a few KiB,
// some 64 KiB, one in a hundred 256 KiB (text-like content, compressible).
void MakeSmallTree(const std::string& root, int files) {
  std::mt19937 rng(5);
  for (int d = 0; d < 1000; ++d) fs::create_directories(root + "/d" + std::to_string(d));
  std::string content;
  for (int i = 0; i < files; ++i) {
    const std::size_t size = i % 100 == 0 ? 256 << 10 : i % 10 == 0 ? 64 << 10 : 512 + rng() % 8192;
    content.assign(size, 'a');
    for (char& c : content) c = static_cast<char>('a' + rng() % 16);
    WriteFile(root + "/d" + std::to_string(i % 1000) + "/f" + std::to_string(i), content);
  }
}

std::vector<snapshot::LayerEntry> Everything(int root_fd) {
  return snapshot::Manifest::Scan(root_fd)->AllPaths();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct StatFloor {
  std::size_t stats = 0;
  unsigned threads = 1;
  double seconds = 0, syscall_us = 0;
};

// Lists every directory first (not timed), then times only the fstatat calls, split over the
// walk's thread count.
StatFloor MeasureStatFloor(int root_fd) {
  StatFloor f;
  f.threads = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
  // One fd per directory, all open at once: lift the soft limit to the hard one.
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  std::vector<std::pair<int, std::string>> all;  // (directory fd, name)
  std::vector<UniqueFd> dirs;
  dirs.emplace_back(openat(root_fd, ".", O_RDONLY | O_DIRECTORY));
  for (std::size_t k = 0; k < dirs.size(); ++k) {
    const int d = dirs[k].get();
    DIR* list = fdopendir(dup(d));
    if (!list) break;
    while (dirent* e = readdir(list)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      all.emplace_back(d, e->d_name);
      if (e->d_type == DT_DIR) dirs.emplace_back(openat(d, e->d_name, O_RDONLY | O_DIRECTORY));
    }
    closedir(list);
  }
  f.stats = all.size();
  auto t = Clock::now();
  std::vector<std::thread> pool;
  for (unsigned k = 0; k < f.threads; ++k) {
    pool.emplace_back([&, k] {
      struct stat st;
      for (std::size_t i = k; i < all.size(); i += f.threads) {
        fstatat(all[i].first, all[i].second.c_str(), &st, AT_SYMLINK_NOFOLLOW);
      }
    });
  }
  for (auto& th : pool) th.join();
  f.seconds = Since(t);
  t = Clock::now();
  for (int i = 0; i < 100000; ++i) syscall(SYS_getppid);
  f.syscall_us = Since(t) * 1e6 / 100000;
  return f;
}

// kaniko's approach: read and hash every file.
double HashEverything(const std::string& root) {
  auto t = Clock::now();
  char buf[1 << 16];
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    image::Sha256 h;
    UniqueFd fd(open(e.path().c_str(), O_RDONLY));
    ssize_t n;
    while ((n = read(fd.get(), buf, sizeof(buf))) > 0) h.Update(buf, static_cast<std::size_t>(n));
    h.Hex();
  }
  return Since(t);
}

}  // namespace

int main(int argc, char** argv) {
  int files = 100000;
  double gib = 1.0;
  for (int i = 1; i + 1 < argc; ++i) {
    if (!std::strcmp(argv[i], "--files")) files = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--gib")) gib = std::atof(argv[i + 1]);
  }
  char tmpl[] = "/tmp/slipway-snapshot-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;
  std::printf("snapshot benchmark (%d files, %.1f GiB of mixed files), work dir %s\n", files, gib,
              dir.c_str());

  // 1. A base layer and its extraction.
  const std::string src = dir + "/src";
  MakeSmallTree(src, files);
  UniqueFd src_fd(open(src.c_str(), O_RDONLY | O_DIRECTORY));
  const std::string base_layer = dir + "/base.tar.gz";
  {
    UniqueFd out(open(base_layer.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    auto b = snapshot::WriteLayer(src_fd.get(), Everything(src_fd.get()), out.get(), {});
    if (!b.ok()) return 1;
  }
  Shell("sync");
  fs::create_directories(dir + "/ours");
  UniqueFd ours(open((dir + "/ours").c_str(), O_RDONLY | O_DIRECTORY));
  UniqueFd in(open(base_layer.c_str(), O_RDONLY));
  auto t = Clock::now();
  snapshot::ExtractOptions eo;
  eo.preserve_ownership = geteuid() == 0;
  auto st = snapshot::ExtractLayer(ours.get(), in.get(), "base", eo);
  const double extract_s = Since(t);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().ToString().c_str());
    return 1;
  }
  fs::create_directories(dir + "/tar");
  const double tar_s = Shell("tar -xzf " + base_layer + " -C " + dir + "/tar");
  std::printf("extract %d-file gzip layer:  slipway %.2f s   tar -xzf %.2f s   (%.2fx)\n", files,
              extract_s, tar_s, extract_s / tar_s);

  // 2. Snapshot after changing one file (medians: the walk of 5 runs, the baseline of 3).
  auto before = snapshot::Manifest::Scan(ours.get());
  std::vector<double> walks;
  std::size_t changed = 0;
  for (int round = 0; round < 5; ++round) {
    WriteFile(dir + "/ours/d7/f7", "changed " + std::to_string(round));
    t = Clock::now();
    auto after = snapshot::Manifest::Scan(ours.get());
    auto changes = snapshot::Diff(*before, *after);
    const std::string one = dir + "/one.tar.gz";
    UniqueFd one_fd(open(one.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
    auto blob = snapshot::WriteLayer(ours.get(), changes, one_fd.get(), {});
    walks.push_back(Since(t));
    if (!blob.ok()) return 1;
    changed = changes.size();
    before = std::move(after);
  }
  const double walk_s = Median(walks);
  const double hash_s = Median({HashEverything(dir + "/ours"), HashEverything(dir + "/ours"),
                                HashEverything(dir + "/ours")});
  std::printf(
      "snapshot after 1 changed file: walk %.3f s (%zu entries)   hash-everything %.3f s"
      "   (walk %.1fx faster)\n",
      walk_s, changed, hash_s, hash_s / walk_s);
  // What bounds the walk here: the same fstatat per entry with nothing else done, on as many
  // threads as the walk uses, and the cost of an empty system call.
  const StatFloor floor = MeasureStatFloor(ours.get());
  std::printf("  bound: %zu fstatat alone on %u threads %.3f s (%.2f us each);"
              " an empty syscall %.2f us\n",
              floor.stats, floor.threads, floor.seconds, floor.seconds * floor.threads * 1e6 /
                  static_cast<double>(floor.stats),
              floor.syscall_us);
  if (geteuid() == 0) {
    fs::create_directories(dir + "/scratch");
    auto s = snapshot::OverlaySession::Mount(dir + "/ours", dir + "/scratch");
    if (s.ok()) {
      WriteFile(s->merged() + "/d8/f8", "changed");
      t = Clock::now();
      auto oc = s->Changes();
      UniqueFd merged(open(s->merged().c_str(), O_RDONLY | O_DIRECTORY));
      UniqueFd ofd(open((dir + "/ovl.tar.gz").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
      auto ob = snapshot::WriteLayer(merged.get(), *oc, ofd.get(), {});
      const double ovl_s = Since(t);
      std::printf("snapshot after 1 changed file: overlay %.4f s (%zu entries)   (%.0fx faster than "
                  "hash-everything)\n",
                  ovl_s, oc->size(), hash_s / ovl_s);
      (void)s->Unmount();
    } else {
      std::printf("snapshot, overlay strategy: not measured (%s)\n", s.error().ToString().c_str());
    }
  } else {
    std::printf("snapshot, overlay strategy: not measured (needs root to mount)\n");
  }
  std::printf("peak RSS after the %d-file snapshot: %ld KiB\n", files, PeakRssKiB());

  // 3. Layer write throughput for ~gib GiB: a few large files (incompressible and compressible)
  //    plus the small-file tree.
  const std::string big = dir + "/big";
  fs::create_directories(big);
  std::mt19937_64 rng(9);
  const std::size_t chunk = 64 << 20;
  std::string data(chunk, '\0');
  std::size_t total = 0;
  for (int i = 0; total < static_cast<std::size_t>(gib * (1 << 30)); ++i) {
    if (i % 2) {
      for (std::size_t k = 0; k < chunk; k += 8)
        *reinterpret_cast<std::uint64_t*>(&data[k]) = rng();
    } else {
      for (std::size_t k = 0; k < chunk; ++k) data[k] = static_cast<char>('a' + (k * 7 + i) % 23);
    }
    WriteFile(big + "/blob" + std::to_string(i), data);
    total += chunk;
  }
  Shell("sync");
  UniqueFd big_fd(open(big.c_str(), O_RDONLY | O_DIRECTORY));
  const std::string out_path = dir + "/big.tar.gz";
  UniqueFd out(open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  t = Clock::now();
  auto w = snapshot::WriteLayer(big_fd.get(), Everything(big_fd.get()), out.get(), {});
  const double write_s = Since(t);
  if (!w.ok()) return 1;
  const double gzip_s = Shell("tar -C " + big + " -cf - . | gzip -6 > " + dir + "/g.tar.gz");
  const bool have_pigz = std::system("command -v pigz >/dev/null") == 0;
  const double pigz_s =
      have_pigz ? Shell("tar -C " + big + " -cf - . | pigz -6 > " + dir + "/p.tar.gz") : -1;
  const double mib = total / 1048576.0;
  std::printf("layer write %.0f MiB: slipway %.0f MiB/s   tar|gzip %.0f MiB/s", mib, mib / write_s,
              mib / gzip_s);
  if (have_pigz) {
    std::printf("   tar|pigz %.0f MiB/s", mib / pigz_s);
  } else {
    std::printf("   tar|pigz not measured (pigz not installed)");
  }
  std::printf("   (slipway: parallel gzip, %u threads)\n", std::thread::hardware_concurrency());
  fs::remove_all(dir);
  return 0;
}
