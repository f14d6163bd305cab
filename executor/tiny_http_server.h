// A tiny HTTP/1.0 server on 127.0.0.1 for tests (testonly), one request per connection.
//
// TinyHttpServer() answers from a fixed table:
//   /files/app.txt  200, "hello world\n", Last-Modified Wed, 21 Oct 2015 07:28:00 GMT
//   /moved          302 to /files/app.txt
//   anything else   404
// TinyHttpServer(ServeFiles(dir, "user:password")) serves the files under dir (the query string
// ignored, ".." refused), and with credentials asks for them by HTTP Basic auth (401 otherwise):
// enough for git's "dumb" HTTP protocol.
#ifndef SLIPWAY_EXECUTOR_TINY_HTTP_SERVER_H_
#define SLIPWAY_EXECUTOR_TINY_HTTP_SERVER_H_

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "image/digest.h"

namespace slipway::testing {

using HttpHandler = std::function<std::string(const std::string& path, const std::string& request)>;

inline std::string FixedAnswers(const std::string& path, const std::string&) {
  if (path == "/files/app.txt") {
    return "HTTP/1.0 200 OK\r\nContent-Length: 12\r\n"
           "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\nhello world\n";
  }
  if (path == "/moved") {
    return "HTTP/1.0 302 Found\r\nLocation: /files/app.txt\r\nContent-Length: 0\r\n\r\n";
  }
  return "HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n";
}

inline HttpHandler ServeFiles(const std::string& dir, const std::string& user_password = "") {
  return [dir, user_password](const std::string& path, const std::string& request) -> std::string {
    if (!user_password.empty() &&
        request.find("\r\nAuthorization: Basic " + image::Base64Encode(user_password) + "\r\n") == std::string::npos) {
      return "HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n"
             "Content-Length: 0\r\n\r\n";
    }
    const std::string file = path.substr(0, path.find('?'));
    std::ifstream in(dir + file, std::ios::binary);
    if (file.find("..") != std::string::npos || !in) {
      return "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    }
    std::stringstream body;
    body << in.rdbuf();
    const std::string b = body.str();
    return "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
           std::to_string(b.size()) + "\r\n\r\n" + b;
  };
}

class TinyHttpServer {
 public:
  explicit TinyHttpServer(HttpHandler handler = FixedAnswers) : handler_(std::move(handler)) {
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
  std::string HostPort() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      timeval limit{5, 0};  // a client that never finishes its request does not stall the server
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos && req.size() < (1 << 16)) {
        ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
        if (req[0] < 'A' || req[0] > 'Z') break;  // not HTTP (a TLS handshake, say)
      }
      ++requests_;
      const std::size_t sp = req.find(' ');
      const std::string path =
          sp == std::string::npos ? "" : req.substr(sp + 1, req.find(' ', sp + 1) - sp - 1);
      const std::string resp = handler_(path, req);
      for (std::size_t off = 0; off < resp.size();) {
        ssize_t n = write(c, resp.data() + off, resp.size() - off);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
      }
      close(c);
    }
  }
  HttpHandler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace slipway::testing

#endif  // SLIPWAY_EXECUTOR_TINY_HTTP_SERVER_H_
