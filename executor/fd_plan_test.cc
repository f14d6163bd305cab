#include "executor/fd_plan.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <map>
#include <string>
#include <vector>

#include "executor/fd_plan_builder.h"

namespace slipway::executor {
namespace {

// A fake fd table: fd number -> (which file, close-on-exec). Records every operation and can be
// told to fail the n-th one.
class FakeFds : public FdOps {
 public:
  struct Entry {
    std::string file;
    bool cloexec;
  };
  std::map<int, Entry> table;
  std::vector<std::string> log;
  int fail_at = -1;  // index into log at which to fail with EMFILE

  void Open(int fd, const std::string& file, bool cloexec = true) { table[fd] = {file, cloexec}; }

  int DupAbove(int fd, int min_fd) override {
    if (Fail("dupabove " + std::to_string(fd))) return -EMFILE;
    if (!table.count(fd)) return -EBADF;
    int n = min_fd;
    while (table.count(n)) ++n;
    table[n] = {table[fd].file, true};
    return n;
  }
  int DupTo(int from, int to) override {
    if (Fail("dup " + std::to_string(from) + "->" + std::to_string(to))) return -EMFILE;
    if (!table.count(from) || from == to) return -EBADF;
    table[to] = {table[from].file, false};
    return to;
  }
  int ClearCloexec(int fd) override {
    if (Fail("keep " + std::to_string(fd))) return -EMFILE;
    if (!table.count(fd)) return -EBADF;
    table[fd].cloexec = false;
    return 0;
  }
  int CloexecRange(unsigned lo, unsigned hi) override {
    if (Fail("cloexec " + std::to_string(lo) + ".." + std::to_string(hi))) return -EMFILE;
    for (auto& [fd, e] : table) {
      if (static_cast<unsigned>(fd) >= lo && static_cast<unsigned>(fd) <= hi) e.cloexec = true;
    }
    return 0;
  }
  // What survives exec.
  std::map<int, std::string> AfterExec() const {
    std::map<int, std::string> out;
    for (const auto& [fd, e] : table) {
      if (!e.cloexec) out[fd] = e.file;
    }
    return out;
  }

 private:
  bool Fail(std::string op) {
    log.push_back(std::move(op));
    return fail_at >= 0 && static_cast<int>(log.size()) - 1 == fail_at;
  }
};

struct Case {
  const char* name;
  std::vector<FdMapping> mappings;
  std::vector<int> open_fds;  // parent fds open before (each its own file "fN"); none cloexec
  int status_fd;
};

TEST_CASE("fd plan: every mapping lands, nothing else survives exec, status pipe survives until") {
  const Case cases[] = {
      {"identity", {{0, 0}, {1, 1}, {2, 2}}, {0, 1, 2, 5}, 7},
      {"simple move", {{0, 10}, {1, 11}, {2, 11}}, {10, 11, 12}, 13},
      {"swap cycle", {{3, 4}, {4, 3}}, {3, 4}, 9},
      {"three-cycle", {{3, 4}, {4, 5}, {5, 3}}, {3, 4, 5}, 9},
      {"fan-out", {{0, 7}, {1, 7}, {2, 7}, {7, 7}}, {7}, 8},
      {"clash with status pipe", {{5, 6}, {6, 7}}, {6, 7}, 5},
      {"sparse targets", {{0, 3}, {40, 3}, {100, 1}}, {1, 3, 50}, 4},
      {"source is a later target", {{1, 2}, {2, 3}, {3, 1}}, {1, 2, 3}, 60},
      {"no mappings", {}, {0, 1, 2, 9}, 10},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    FakeFds fds;
    for (int fd : c.open_fds) fds.Open(fd, "f" + std::to_string(fd), false);
    fds.Open(c.status_fd, "status", true);
    auto plan = MakeFdPlan(c.mappings, {c.status_fd});
    REQUIRE(plan.ok());
    int status = c.status_fd, failed = 0;
    REQUIRE(plan->Apply(fds, &status, 1, &failed) == 0);

    std::map<int, std::string> want;
    for (const FdMapping& m : c.mappings) want[m.child_fd] = "f" + std::to_string(m.parent_fd);
    CHECK(fds.AfterExec() == want);
    // The status pipe is still usable (right file) and disappears at exec.
    REQUIRE(fds.table.count(status));
    CHECK(fds.table[status].file == "status");
    CHECK(fds.table[status].cloexec);
  }
}

TEST_CASE("fd plan: several reserved fds are all kept out of the way") {
  FakeFds fds;
  fds.Open(3, "exe");
  fds.Open(4, "status");
  fds.Open(10, "memfd", false);
  auto plan = MakeFdPlan({{3, 10}, {4, 4}}, {4, 3});
  REQUIRE(plan.ok());
  int reserved[2] = {4, 3};
  int failed = 0;
  REQUIRE(plan->Apply(fds, reserved, 2, &failed) == 0);
  CHECK(fds.table[reserved[0]].file == "status");
  CHECK(fds.table[reserved[1]].file == "exe");
  CHECK(reserved[1] != 3);
  CHECK(fds.AfterExec() == std::map<int, std::string>{{3, "memfd"}, {4, "status"}});
}

TEST_CASE("fd plan: a failing operation is reported with the mapping's index") {
  // Swap: ops are dupabove 4, dupabove 3, dup x->3, dup y->4, cloexec ranges.
  for (int fail_at = 0; fail_at < 4; ++fail_at) {
    CAPTURE(fail_at);
    FakeFds fds;
    fds.Open(3, "f3", false);
    fds.Open(4, "f4", false);
    fds.Open(9, "status");
    fds.fail_at = fail_at;
    auto plan = MakeFdPlan({{3, 4}, {4, 3}}, {9});
    REQUIRE(plan.ok());
    int status = 9, failed = -7;
    CHECK(plan->Apply(fds, &status, 1, &failed) == -EMFILE);
    CHECK(failed == fail_at % 2);
  }
  FakeFds fds;
  fds.Open(3, "f3", false);
  fds.fail_at = 1;  // the first close-on-exec sweep
  auto plan = MakeFdPlan({{3, 3}}, {});
  REQUIRE(plan.ok());
  int failed = 5;
  CHECK(plan->Apply(fds, nullptr, 0, &failed) == -EMFILE);
  CHECK(failed == -1);
  CHECK(fds.log == std::vector<std::string>{"keep 3", "cloexec 0..2"});
}

TEST_CASE("fd plan: a missing source fd fails with EBADF") {
  FakeFds fds;
  auto plan = MakeFdPlan({{0, 20}}, {});
  REQUIRE(plan.ok());
  int failed = -1;
  CHECK(plan->Apply(fds, nullptr, 0, &failed) == -EBADF);
  CHECK(failed == 0);
}

TEST_CASE("fd plan: Make rejects duplicate child fds and negative numbers") {
  auto dup = MakeFdPlan({{1, 5}, {1, 6}}, {});
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().message() == "child fd 1 is mapped twice");
  auto neg = MakeFdPlan({{-1, 5}}, {});
  REQUIRE_FALSE(neg.ok());
  CHECK(neg.error().errno_value() == EBADF);
  auto ok = MakeFdPlan({{0, 30}, {1, 2}}, {40, 3});
  REQUIRE(ok.ok());
  CHECK(ok->first_free_fd() == 41);
}

}  // namespace
}  // namespace slipway::executor
