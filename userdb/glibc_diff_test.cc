// Differential test: Slipway's resolver against glibc's own files backend.
//
// For many random /etc/passwd + /etc/group pairs (duplicates, long member lists, prefixes of
// names, comments, malformed lines), a child process chroots into the generated root and asks
// glibc -- getpwnam + getgrouplist, the calls Slipway itself must never make -- who each user is;
// the parent asks userdb::ResolveUser and compares uid, gid and the group set.
//
// The places where we differ from glibc on purpose are in kDeliberate below, each with its reason;
// those cases assert both answers, so a change on either side shows up.
//
// Needs real root for chroot(2) (tagged no-sandbox). glibc >= 2.34 has the files backend built in,
// so the chrooted child needs no libnss_files.so; an nsswitch.conf saying "files" is written
// anyway.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/test_util.h"
#include "userdb/resolve.h"

namespace slipway::userdb {
namespace {

// What one side says about one user name: "-" for not found, else "uid gid g1 g2 ..." with the
// groups sorted (order is not part of the contract; the primary gid's presence is checked apart).
using Answer = std::string;

std::string Render(std::uint32_t uid, std::uint32_t gid, std::vector<std::uint32_t> groups) {
  std::sort(groups.begin(), groups.end());
  std::ostringstream s;
  s << uid << " " << gid;
  for (auto g : groups) s << " " << g;
  return s.str();
}

// Asks glibc, inside a chroot of `root`, about every name; one answer per name.
std::vector<Answer> AskGlibc(const std::string& root, const std::vector<std::string>& names) {
  int pipefd[2];
  REQUIRE(pipe2(pipefd, O_CLOEXEC) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(pipefd[0]);
    std::string out;
    if (chroot(root.c_str()) != 0 || chdir("/") != 0) _exit(100);
    for (const std::string& name : names) {
      passwd* pw = getpwnam(name.c_str());
      if (!pw) {
        out += "-\n";
        continue;
      }
      int n = 70000;
      std::vector<gid_t> gs(n);
      if (getgrouplist(name.c_str(), pw->pw_gid, gs.data(), &n) < 0) _exit(101);
      gs.resize(n);
      bool primary_first = !gs.empty() && gs[0] == pw->pw_gid;
      out += Render(pw->pw_uid, pw->pw_gid, std::vector<std::uint32_t>(gs.begin(), gs.end()));
      out += primary_first ? "\n" : " (primary not first)\n";
    }
    std::size_t done = 0;
    while (done < out.size()) {
      ssize_t w = write(pipefd[1], out.data() + done, out.size() - done);
      if (w <= 0) _exit(102);
      done += w;
    }
    _exit(0);
  }
  close(pipefd[1]);
  std::string all;
  char buf[65536];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) all.append(buf, n);
  close(pipefd[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE_MESSAGE(WIFEXITED(status), "glibc child crashed");
  REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "glibc child failed at step ", WEXITSTATUS(status));
  std::vector<Answer> answers;
  std::istringstream in(all);
  for (std::string line; std::getline(in, line);) answers.push_back(line);
  REQUIRE(answers.size() == names.size());
  return answers;
}

// glibc's getgrouplist lists a gid twice when two group entries share it; setgroups(2) does not
// care, Slipway deduplicates (see kDeliberate). This folds such repeats for the comparison.
Answer Dedupe(const Answer& a) {
  std::istringstream in(a);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  if (words.size() < 2) return a;
  std::string out = words[0] + " " + words[1];
  for (std::size_t i = 2; i < words.size(); ++i) {
    if (i == 2 || words[i] != words[i - 1]) out += " " + words[i];
  }
  return out;
}

Answer AskSlipway(const std::string& root, const std::string& name) {
  auto id = ResolveUser(root, name);
  if (!id.ok()) return "-";
  bool primary_first = !id->groups.empty() && id->groups[0] == id->gid;
  return Render(id->uid, id->gid, id->groups) + (primary_first ? "" : " (primary not first)");
}

void WriteRoot(const std::string& root, const std::string& passwd, const std::string& group) {
  testing::WriteFile(root + "/etc/passwd", passwd);
  testing::WriteFile(root + "/etc/group", group);
  testing::WriteFile(root + "/etc/nsswitch.conf", "passwd: files\ngroup: files\n");
}

// A random database pair. Nastiness on which glibc and Slipway agree: duplicate names and ids
// (first wins), names that are prefixes of others, long member lists, members that do not exist,
// comment and blank lines, lines with too few fields or non-numeric ids, unknown members, users
// whose primary group has no entry.
struct Generated {
  std::string passwd, group;
  std::vector<std::string> names;  // names to ask about (including absent ones)
};

Generated Generate(std::mt19937& rng) {
  auto pick = [&rng](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const char* const stems[] = {"bob", "bobby", "al", "alice", "svc", "svc-1", "user_x", "a.b", "Z"};
  std::vector<std::string> pool;
  for (const char* s : stems) pool.push_back(s);
  for (int i = 0; i < 30; ++i) pool.push_back("u" + std::to_string(pick(50)));

  Generated g;
  const std::size_t users = 3 + pick(25);
  for (std::size_t i = 0; i < users; ++i) {
    switch (pick(12)) {
      case 0:
        g.passwd += "# a comment line\n";
        break;
      case 1:
        g.passwd += "\n";
        break;
      case 2:
        g.passwd += "garbage without colons\n";
        break;
      case 3:
        g.passwd += pool[pick(pool.size())] + ":x:abc:1::/:/bin/sh\n";
        break;
      case 4:
        g.passwd += pool[pick(pool.size())] + ":x:5\n";
        break;
      default:
        break;
    }
    const std::string& name = pool[pick(pool.size())];
    g.passwd += name + ":x:" + std::to_string(pick(3) ? 1000 + pick(40) : pick(5)) + ":" +
                std::to_string(pick(4) ? 100 + pick(30) : 60000 + pick(5)) + "::/home/" + name +
                ":/bin/sh\n";
  }
  const std::size_t groups = 2 + pick(40);
  for (std::size_t i = 0; i < groups; ++i) {
    switch (pick(12)) {
      case 0:
        g.group += "# comment\n";
        break;
      case 1:
        g.group += "\n";
        break;
      case 2:
        g.group += "grp_bad:x:notanumber:bob\n";
        break;
      case 3:
        g.group += "short:x:5\n";
        break;
      default:
        break;
    }
    std::string members;
    const std::size_t count = pick(10) == 0 ? 2000 + pick(8000) : pick(6);
    for (std::size_t m = 0; m < count; ++m) {
      if (m) members += ",";
      members += (count > 100 && pick(50)) ? "m" + std::to_string(m) : pool[pick(pool.size())];
    }
    g.group += "g" + std::to_string(pick(20)) + ":x:" + std::to_string(100 + pick(30)) + ":" +
               members + "\n";
  }
  g.names = {"ghost", "bo", "bobb"};
  for (const std::string& n : pool) g.names.push_back(n);
  std::sort(g.names.begin(), g.names.end());
  g.names.erase(std::unique(g.names.begin(), g.names.end()), g.names.end());
  return g;
}

TEST_CASE("userdb: agrees with glibc getpwnam + getgrouplist on random databases") {
  REQUIRE_MESSAGE(geteuid() == 0, "this test needs real root (chroot)");
  testing::TempDir tmp;
  std::mt19937 rng(20261123);
  std::size_t compared = 0, found = 0;
  for (int round = 0; round < 150; ++round) {
    Generated g = Generate(rng);
    const std::string root = tmp.Join("r" + std::to_string(round));
    WriteRoot(root, g.passwd, g.group);
    std::vector<Answer> glibc = AskGlibc(root, g.names);
    for (std::size_t i = 0; i < g.names.size(); ++i) {
      CAPTURE(round);
      CAPTURE(g.names[i]);
      Answer ours = AskSlipway(root, g.names[i]);
      CHECK(ours == Dedupe(glibc[i]));
      CHECK(ours == Dedupe(ours));  // Slipway itself never repeats a gid
      ++compared;
      if (glibc[i] != "-") ++found;
    }
  }
  MESSAGE("compared ", compared, " lookups, ", found, " of them found users");
  CHECK(found > 1000);  // the generator really produces users, not just misses
}

// Where Slipway differs from glibc on purpose. Each row asserts both answers for user "bob".
struct Deliberate {
  const char* what;
  const char* passwd;
  const char* group;
  const char* glibc;
  const char* slipway;
  const char* why;
};

const Deliberate kDeliberate[] = {
    {"uid above 2^31-1", "bob:x:2147483648:100::/:/bin/sh\n", "", "2147483648 100 100", "-",
     "ids above 2^31-1 are refused by Docker/moby and the kernel ABI treats (uint32)-1 as 'no "
     "change'; Slipway skips the line instead of running with such an id"},
    {"blanks around a member", "bob:x:1000:100::/:/bin/sh\n", "g:x:200: bob ,x\n", "1000 100 100",
     "1000 100 100 200",
     "the reference asks for members compared after trimming; glibc compares the raw text"},
    {"CRLF line endings", "bob:x:1000:100::/:/bin/sh\r\n", "g:x:200:x,bob\r\n", "1000 100 100",
     "1000 100 100 200",
     "files edited on Windows end in \\r\\n; glibc keeps \\r in the last member, Slipway strips "
     "it"},
    {"extra passwd fields", "bob:x:1000:100::/home/bob:/bin/sh:extra\n", "", "1000 100 100", "-",
     "a line with more than 7 fields is malformed; Slipway skips it with a warning rather than "
     "guess which field is which"},
    {"missing shell field", "bob:x:1000:100::/home/bob\n", "", "1000 100 100", "-",
     "a line with 6 fields is malformed (moby accepts it, glibc too); Slipway skips it with a "
     "warning, never aliasing missing fields"},
    {"a gid reached through two group entries", "bob:x:1000:100::/:/bin/sh\n",
     "a:x:200:bob\nb:x:200:bob\n", "1000 100 100 200 200", "1000 100 100 200",
     "the kernel accepts repeats but they waste NGROUPS_MAX slots; Slipway lists each gid once"},
    {"leading blanks", "  bob:x:1000:100::/:/bin/sh\n", "", "1000 100 100", "1000 100 100",
     "not a difference: both skip leading blanks (kept here to pin the behaviour)"},
};

TEST_CASE("userdb: deliberate differences from glibc are exactly the listed ones") {
  REQUIRE_MESSAGE(geteuid() == 0, "this test needs real root (chroot)");
  testing::TempDir tmp;
  int i = 0;
  for (const Deliberate& d : kDeliberate) {
    CAPTURE(d.what);
    CAPTURE(d.why);
    const std::string root = tmp.Join("d" + std::to_string(i++));
    WriteRoot(root, d.passwd, d.group);
    CHECK(AskGlibc(root, {"bob"})[0] == d.glibc);
    CHECK(AskSlipway(root, "bob") == d.slipway);
  }
}

}  // namespace
}  // namespace slipway::userdb
