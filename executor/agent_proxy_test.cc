// The SSH agent proxy against a stand-in agent (a unix socket server that answers every message
// with "agent:" + the message): bytes go both ways, on several connections, through a socket
// with the owner and mode asked for; bad agents are refused up front.
#include "executor/agent_proxy.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/test_util.h"
#include "executor/fake_agent.h"

namespace slipway::executor {
namespace {

using testing::FakeAgent;

std::string Ask(int fd, const std::string& msg) {
  REQUIRE(write(fd, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()));
  std::string got;
  char buf[256];
  while (got.size() < msg.size() + 6) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) break;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

TEST_CASE("agent proxy: forwards both ways, on several connections, through its own socket") {
  testing::TempDir short_tmp("/tmp");  // the agent's socket path must fit in sun_path
  testing::TempDir tmp;                 // Bazel's: too long for sun_path, on purpose
  FakeAgent agent(short_tmp.Join("agent.sock"));
  const std::string mine = tmp.Join("a-directory-name-that-makes-the-path-long") + "/step.sock";
  std::filesystem::create_directories(tmp.Join("a-directory-name-that-makes-the-path-long"));
  INFO(mine.size() << " bytes: " << mine);
  auto proxy = AgentProxy::Start(short_tmp.Join("agent.sock"), mine, 0, 0, 0660);
  REQUIRE_MESSAGE(proxy.ok(), proxy.error().ToString());
  struct stat st;
  REQUIRE(stat(mine.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0660);
  CHECK(st.st_uid == 0);
  auto a = ConnectUnix(mine);
  auto b = ConnectUnix(mine);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(Ask(a->get(), "hello") == "agent:hello");
  CHECK(Ask(b->get(), "second") == "agent:second");
  CHECK(Ask(a->get(), "again") == "agent:again");
  a->Reset();  // one side gone; the other still works
  CHECK(Ask(b->get(), "still") == "agent:still");
  // Stopping the proxy with a connection open returns at once and closes it.
  const auto t = std::chrono::steady_clock::now();
  proxy->reset();
  CHECK(std::chrono::steady_clock::now() - t < std::chrono::seconds(2));
  char c;
  pollfd p{b->get(), POLLIN, 0};
  REQUIRE(poll(&p, 1, 5000) == 1);
  CHECK(read(b->get(), &c, 1) == 0);
}

TEST_CASE("agent proxy: a missing, non-socket or dead agent is refused before the step") {
  testing::TempDir tmp("/tmp");
  auto missing = AgentProxy::Start(tmp.Join("nope.sock"), tmp.Join("s1"), 0, 0, 0600);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().ToString() ==
        "the SSH agent socket " + tmp.Join("nope.sock") + ": No such file or directory");
  testing::WriteFile(tmp.Join("file"), "x");
  auto file = AgentProxy::Start(tmp.Join("file"), tmp.Join("s2"), 0, 0, 0600);
  REQUIRE_FALSE(file.ok());
  CHECK(file.error().message() == "the SSH agent " + tmp.Join("file") + " is not a socket");
  {
    // A socket file nobody listens on any more.
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, tmp.Join("dead.sock").c_str(), sizeof(a.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    close(fd);
  }
  auto dead = AgentProxy::Start(tmp.Join("dead.sock"), tmp.Join("s3"), 0, 0, 0600);
  REQUIRE_FALSE(dead.ok());
  CHECK(dead.error().ToString() == "the SSH agent: connecting to " + tmp.Join("dead.sock") +
                                       ": Connection refused");
  CHECK_FALSE(std::filesystem::exists(tmp.Join("s3")));
}

}  // namespace
}  // namespace slipway::executor
