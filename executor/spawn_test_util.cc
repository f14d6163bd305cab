#include "executor/spawn_test_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace slipway::executor::testing {

std::string ProbePath() { return slipway::testing::Runfile("executor/probe_bin"); }

ProbeRoot::ProbeRoot() {
  slipway::testing::MakeDirs(root + "/bin");
  slipway::testing::MakeDirs(root + "/tmp", 01777);
  std::filesystem::copy_file(ProbePath(), root + "/probe");
  ::chmod((root + "/probe").c_str(), 0755);
}

Result<Captured> RunCaptured(SpawnOptions o) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return ErrnoError("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  UniqueFd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  o.fds.push_back({0, devnull.get()});
  o.fds.push_back({1, wr.get()});
  o.fds.push_back({2, wr.get()});
  auto proc = Spawn(o);
  if (!proc.ok()) return std::move(proc).error();
  wr.Reset();
  Captured c;
  char buf[4096];
  ssize_t n;
  while ((n = read(rd.get(), buf, sizeof(buf))) > 0) c.out.append(buf, n);
  auto st = proc->Wait();
  if (!st.ok()) return std::move(st).error();
  c.status = *st;
  return c;
}

}  // namespace slipway::executor::testing
