// A stand-in SSH agent for tests (testonly): a unix socket server that answers every message
// with "agent:" followed by the message, one thread per connection.
#ifndef SLIPWAY_EXECUTOR_FAKE_AGENT_H_
#define SLIPWAY_EXECUTOR_FAKE_AGENT_H_

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace slipway::testing {

class FakeAgent {
 public:
  explicit FakeAgent(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(listen(fd_, 8) == 0);
    thread_ = std::thread([this] {
      std::vector<std::thread> conns;
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) break;
        conns.emplace_back([c] {
          char buf[256];
          ssize_t n;
          while ((n = read(c, buf, sizeof(buf))) > 0) {
            const std::string reply = "agent:" + std::string(buf, static_cast<std::size_t>(n));
            (void)!write(c, reply.data(), reply.size());
          }
          close(c);
        });
      }
      for (auto& t : conns) t.join();
    });
  }
  ~FakeAgent() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }

 private:
  int fd_;
  std::thread thread_;
};

}  // namespace slipway::testing

#endif  // SLIPWAY_EXECUTOR_FAKE_AGENT_H_
