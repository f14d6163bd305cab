// A tiny HTTP/1.0 server on 127.0.0.1 for tests (testonly): fixed answers by path.
//   /files/app.txt  200, "hello world\n", Last-Modified Wed, 21 Oct 2015 07:28:00 GMT
//   /moved          302 to /files/app.txt
//   anything else   404
#ifndef SLIPWAY_EXECUTOR_TINY_HTTP_SERVER_H_
#define SLIPWAY_EXECUTOR_TINY_HTTP_SERVER_H_

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

namespace slipway::testing {

// A one-thread HTTP/1.0 server on 127.0.0.1 that answers every request from a fixed table.
class TinyHttpServer {
 public:
  TinyHttpServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    REQUIRE(listen(fd_, 8) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyHttpServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      ssize_t n = read(c, buf, sizeof(buf));
      std::string req(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      std::string path = req.substr(4, req.find(' ', 4) - 4);
      std::string resp;
      if (path == "/files/app.txt") {
        resp = "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n"
               "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\nhello world\n";
      } else if (path == "/moved") {
        resp = "HTTP/1.0 302 Found\r\nLocation: /files/app.txt\r\nContent-Length: 0\r\n\r\n";
      } else {
        resp = "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n";
      }
      (void)!write(c, resp.data(), resp.size());
      close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace slipway::testing

#endif  // SLIPWAY_EXECUTOR_TINY_HTTP_SERVER_H_
