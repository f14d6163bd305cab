// userdb benchmark: parse speed of a 10 MiB /etc/group and per-lookup cost of USER resolution,
// side by side with glibc's getpwnam + getgrouplist on the same files in the same run.
//
//   bazel run -c opt //bench:userdb_bench [-- --lookups N]
//
// The generated root has 100k groups (67 of them with 10k members each, just under the 10 MiB cap)
// and 20k users. glibc is asked in a child chrooted into that root (needs root; otherwise its
// column says why it is missing). glibc's files backend re-reads both files on every lookup, so
// its figure is compared with Slipway's end-to-end lookup (read + parse + resolve); the in-memory
// lookup on an already-parsed database is printed too.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "userdb/resolve.h"

namespace {

using Clock = std::chrono::steady_clock;
using slipway::userdb::Databases;
using slipway::userdb::Group;
using slipway::userdb::Passwd;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

struct Fixture {
  std::string passwd, group;
  std::vector<std::string> names;
};

Fixture Generate() {
  Fixture f;
  std::mt19937 rng(7);
  constexpr int kUsers = 20000;
  for (int u = 0; u < kUsers; ++u) {
    f.passwd += "user" + std::to_string(u) + ":x:" + std::to_string(10000 + u) + ":" +
                std::to_string(10000 + u) + "::/home/user" + std::to_string(u) + ":/bin/sh\n";
  }
  constexpr int kGroups = 100000;
  for (int g = 0; g < kGroups; ++g) {
    f.group += "group" + std::to_string(g) + ":x:" + std::to_string(100000 + g) + ":";
    const int members = (g % 1500 == 0) ? 10000 : static_cast<int>(rng() % 4);
    for (int m = 0; m < members; ++m) {
      if (m) f.group += ",";
      f.group += "user" + std::to_string(rng() % kUsers);
    }
    f.group += "\n";
  }
  // Names spread over the file, so lookups find users early, late and in the big groups.
  for (int i = 0; i < 50; ++i) f.names.push_back("user" + std::to_string((i * 397) % kUsers));
  return f;
}

// Runs glibc lookups in a chrooted child; returns seconds per lookup, or a negative value.
double GlibcPerLookup(const std::string& root, const std::vector<std::string>& names, int rounds,
                      std::string* why, long* groups_seen) {
  int p[2];
  if (pipe(p) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    double result[2] = {-1, 0};
    if (chroot(root.c_str()) == 0 && chdir("/") == 0) {
      std::vector<gid_t> gs(70000);
      long total = 0;
      auto t0 = Clock::now();
      for (int r = 0; r < rounds; ++r) {
        for (const std::string& n : names) {
          passwd* pw = getpwnam(n.c_str());
          if (!pw) _exit(3);
          int count = static_cast<int>(gs.size());
          if (getgrouplist(n.c_str(), pw->pw_gid, gs.data(), &count) < 0) _exit(4);
          total += count;
        }
      }
      result[0] = Seconds(t0, Clock::now()) / (rounds * names.size());
      result[1] = static_cast<double>(total);
    }
    (void)!write(p[1], result, sizeof(result));
    _exit(0);
  }
  close(p[1]);
  double result[2] = {-1, 0};
  ssize_t n = read(p[0], result, sizeof(result));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (n != sizeof(result) || result[0] < 0) {
    *why = geteuid() == 0 ? "glibc lookup failed" : "needs root for chroot";
    return -1;
  }
  *groups_seen = static_cast<long>(result[1]);
  return result[0];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  Fixture f = Generate();
  char tmpl[] = "/tmp/slipway-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  const std::string root = tmpl;
  std::filesystem::create_directories(root + "/etc");
  Write(root + "/etc/passwd", f.passwd);
  Write(root + "/etc/group", f.group);
  Write(root + "/etc/nsswitch.conf", "passwd: files\ngroup: files\n");

  std::printf(
      "userdb benchmark: /etc/group %.1f MiB (100000 groups, 67 with 10000 members), "
      "/etc/passwd %.1f MiB (20000 users)\n",
      f.group.size() / 1048576.0, f.passwd.size() / 1048576.0);

  // Parse throughput. The text is copied before the clock starts: Parse takes ownership of a
  // string that, in real use, was just read from the file.
  constexpr int kParseRounds = 20;
  std::size_t entries = 0;
  double group_s = 0, passwd_s = 0;
  for (int i = 0; i < kParseRounds; ++i) {
    std::string g = f.group, p = f.passwd;
    auto t0 = Clock::now();
    entries += Group::Parse(std::move(g)).entries().size();
    auto t1 = Clock::now();
    entries += Passwd::Parse(std::move(p)).entries().size();
    auto t2 = Clock::now();
    group_s += Seconds(t0, t1) / kParseRounds;
    passwd_s += Seconds(t1, t2) / kParseRounds;
  }
  std::printf("parse /etc/group:   %8.0f MB/s (%.2f ms)\n", f.group.size() / group_s / 1e6,
              group_s * 1e3);
  std::printf("parse /etc/passwd:  %8.0f MB/s (%.2f ms)\n", f.passwd.size() / passwd_s / 1e6,
              passwd_s * 1e3);

  // In-memory lookups on a parsed database.
  Databases db;
  db.passwd = Passwd::Parse(f.passwd);
  db.group = Group::Parse(f.group);
  long ours_groups = 0;
  auto t0 = Clock::now();
  for (int r = 0; r < rounds * 20; ++r) {
    for (const std::string& n : f.names) {
      auto id = slipway::userdb::ResolveUser(db, n);
      if (!id.ok()) return 1;
      if (r == 0) ours_groups += static_cast<long>(id->groups.size());
    }
  }
  double mem_lookup = Seconds(t0, Clock::now()) / (rounds * 20 * f.names.size());

  // End-to-end lookups: open the root, read and parse both files, resolve (what glibc does).
  t0 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    for (const std::string& n : f.names) {
      auto id = slipway::userdb::ResolveUser(root, n);
      if (!id.ok()) return 1;
    }
  }
  double e2e_lookup = Seconds(t0, Clock::now()) / (rounds * f.names.size());

  std::string why;
  long glibc_groups = 0;
  double glibc_lookup = GlibcPerLookup(root, f.names, rounds, &why, &glibc_groups);

  std::printf("lookup, Slipway in memory (parsed db):        %10.1f us\n", mem_lookup * 1e6);
  std::printf("lookup, Slipway end to end (read+parse+resolve): %7.1f us\n", e2e_lookup * 1e6);
  if (glibc_lookup >= 0) {
    std::printf("lookup, glibc getpwnam+getgrouplist (chroot): %10.1f us   (%.1fx Slipway e2e)\n",
                glibc_lookup * 1e6, glibc_lookup / e2e_lookup);
    std::printf("groups found over %zu users: Slipway %ld, glibc %ld (glibc counts repeats)\n",
                f.names.size(), ours_groups, glibc_groups / rounds);
  } else {
    std::printf("lookup, glibc getpwnam+getgrouplist (chroot): not measured (%s)\n", why.c_str());
  }
  std::filesystem::remove_all(root);
  return entries > 0 ? 0 : 1;
}
