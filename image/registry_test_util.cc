#include "image/registry_test_util.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "image/digest.h"

namespace slipway::testing {
namespace {

// Fixture set-up failures end the process with a message (usable from tests and benchmarks).
void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "registry fixture: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Require(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, "bind");
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  for (std::size_t off = 0; off < s.size();) {
    ssize_t w = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (w <= 0) return false;
    off += static_cast<std::size_t>(w);
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Reads an HTTP message's head (up to the blank line); `rest` keeps what came after it.
bool ReadHead(int fd, std::string* head, std::string* rest) {
  std::string buf;
  char b[65536];
  while (buf.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n <= 0) return false;
    buf.append(b, static_cast<std::size_t>(n));
  }
  const std::size_t end = buf.find("\r\n\r\n") + 4;
  *head = buf.substr(0, end);
  *rest = buf.substr(end);
  return true;
}

std::string HeaderValue(const std::string& head, const std::string& name) {
  const std::string l = Lower(head);
  const std::size_t p = l.find("\r\n" + Lower(name) + ":");
  if (p == std::string::npos) return "";
  std::size_t s = p + 3 + name.size();
  while (s < head.size() && head[s] == ' ') ++s;
  return head.substr(s, head.find("\r\n", s) - s);
}

// Reads the body that follows a head: Content-Length bytes, or to EOF when there is none.
std::string ReadBody(int fd, const std::string& head, std::string rest, bool to_eof) {
  const std::string cl = HeaderValue(head, "Content-Length");
  char b[65536];
  if (cl.empty()) {
    if (!to_eof) return rest;
    for (;;) {
      ssize_t n = recv(fd, b, sizeof(b), 0);
      if (n <= 0) return rest;
      rest.append(b, static_cast<std::size_t>(n));
    }
  }
  const std::size_t want = std::stoul(cl);
  while (rest.size() < want) {
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n <= 0) break;
    rest.append(b, static_cast<std::size_t>(n));
  }
  return rest;
}

}  // namespace

RegistryServer::RegistryServer(const std::string& dir, const std::string& user,
                               const std::string& password, bool tls) {
  port_ = FreePort();
  std::filesystem::create_directories(dir);
  std::string config = "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: " +
                       dir + "/storage\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" +
                       std::to_string(port_) + "\n";
  if (tls) {
    ca_file_ = dir + "/cert.pem";
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout " + dir + "/key.pem -out " +
                            ca_file_ + " 2>/dev/null";
    Require(std::system(cmd.c_str()) == 0, "making a certificate with openssl");
    config += "  tls:\n    certificate: " + ca_file_ + "\n    key: " + dir + "/key.pem\n";
  }
  if (!user.empty()) {
    // bcrypt, as the registry's htpasswd wants it.
    const char* hash = crypt(password.c_str(), "$2b$05$abcdefghijklmnopqrstuu");
    Require(hash != nullptr, "bcrypt");
    std::ofstream(dir + "/htpasswd") << user << ":" << hash << "\n";
    config += "auth:\n  htpasswd:\n    realm: slipway-test\n    path: " + dir + "/htpasswd\n";
  }
  std::ofstream(dir + "/config.yml") << config;
  const std::string log = dir + "/registry.log";
  pid_ = fork();
  if (pid_ == 0) {
    if (!freopen(log.c_str(), "w", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(126);
    execl("/usr/bin/docker-registry", "docker-registry", "serve", (dir + "/config.yml").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    int fd = Connect(port_);
    if (fd >= 0) {
      close(fd);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  Require(false, "docker-registry did not start on port " + std::to_string(port_) + " (see " + log + ")");
}

RegistryServer::~RegistryServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
}

FaultProxy::FaultProxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Require(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, "bind");
  socklen_t len = sizeof(a);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  Require(listen(listen_fd_, 64) == 0, "listen");
  thread_ = std::thread([this] { Serve(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  close(listen_fd_);
  thread_.join();
}

void FaultProxy::FailNext(int n, const std::string& match) {
  std::lock_guard<std::mutex> l(mu_);
  fail_n_ = n;
  fail_match_ = match;
}

void FaultProxy::DropNext(const std::string& match) {
  std::lock_guard<std::mutex> l(mu_);
  drop_ = true;
  drop_match_ = match;
}

void FaultProxy::RequireBearer(const std::string& user, const std::string& password,
                               const std::string& token) {
  std::lock_guard<std::mutex> l(mu_);
  bearer_user_ = user;
  bearer_password_ = password;
  bearer_token_ = token;
}

void FaultProxy::RedirectBlobs(const std::string& url_prefix) {
  std::lock_guard<std::mutex> l(mu_);
  redirect_prefix_ = url_prefix;
}

std::vector<SeenRequest> FaultProxy::seen() {
  std::lock_guard<std::mutex> l(mu_);
  return seen_;
}

void FaultProxy::Serve() {
  while (!stop_) {
    int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    Handle(c);  // one at a time: clients here are sequential
    close(c);
  }
}

void FaultProxy::Handle(int client) {
  std::string head, rest;
  if (!ReadHead(client, &head, &rest)) return;
  const std::string line = head.substr(0, head.find("\r\n"));
  const std::string method = line.substr(0, line.find(' '));
  const std::string path = line.substr(method.size() + 1, line.rfind(' ') - method.size() - 1);
  const std::string what = method + " " + path;
  const std::string auth = HeaderValue(head, "Authorization");
  bool fail = false, drop = false;
  std::string redirect, bearer_user, bearer_password, bearer_token;
  {
    std::lock_guard<std::mutex> l(mu_);
    seen_.push_back({method, path, auth});
    if (fail_n_ > 0 && what.find(fail_match_) != std::string::npos) {
      --fail_n_;
      fail = true;
    } else if (drop_ && what.find(drop_match_) != std::string::npos) {
      drop_ = false;
      drop = true;
    }
    if (!redirect_prefix_.empty() && method == "GET" && path.find("/blobs/sha256:") != std::string::npos) {
      redirect = redirect_prefix_ + path;
    }
    bearer_user = bearer_user_;
    bearer_password = bearer_password_;
    bearer_token = bearer_token_;
  }
  auto reply = [&](const std::string& status, const std::string& headers, const std::string& body) {
    SendAll(client, "HTTP/1.1 " + status + "\r\n" + headers + "Content-Length: " +
                        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  };
  if (drop) {
    // Read half of the body, then hang up without an answer.
    const std::string cl = HeaderValue(head, "Content-Length");
    const std::size_t half = cl.empty() ? 0 : std::stoul(cl) / 2;
    char b[4096];
    while (rest.size() < half) {
      ssize_t n = recv(client, b, std::min(sizeof(b), half - rest.size()), 0);
      if (n <= 0) break;
      rest.append(b, static_cast<std::size_t>(n));
    }
    return;
  }
  const std::string body = ReadBody(client, head, rest, false);
  if (fail) {
    reply("500 Internal Server Error", "Content-Type: application/json\r\n",
          R"({"errors":[{"code":"UNKNOWN","message":"injected failure"}]})");
    return;
  }
  if (!bearer_token.empty()) {
    if (path.rfind("/token", 0) == 0) {
      if (auth == "Basic " + image::Base64Encode(bearer_user + ":" + bearer_password)) {
        reply("200 OK", "Content-Type: application/json\r\n", "{\"token\":\"" + bearer_token + "\"}");
      } else {
        reply("401 Unauthorized", "", R"({"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]})");
      }
      return;
    }
    if (auth != "Bearer " + bearer_token) {
      reply("401 Unauthorized",
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:" + std::to_string(port_) +
                "/token\",service=\"slipway-test\",scope=\"repository:x:pull\"\r\n",
            R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})");
      return;
    }
  }
  if (!redirect.empty()) {
    reply("307 Temporary Redirect", "Location: " + redirect + "\r\n", "");
    return;
  }
  // Forward, one request per connection.
  int up = Connect(upstream_port_);
  if (up < 0) {
    reply("502 Bad Gateway", "", "");
    return;
  }
  std::string fwd = head;
  // Strip the proxy's own auth from what the registry sees when fronting with Bearer.
  if (!bearer_token.empty()) {
    const std::size_t p = Lower(fwd).find("\r\nauthorization:");
    if (p != std::string::npos) fwd.erase(p, fwd.find("\r\n", p + 2) - p);
  }
  const std::size_t end = fwd.rfind("\r\n\r\n");
  fwd = fwd.substr(0, end) + "\r\nConnection: close\r\n\r\n";
  if (SendAll(up, fwd + body)) {
    std::string uhead, urest;
    if (ReadHead(up, &uhead, &urest)) {
      const std::string ubody = method == "HEAD" ? "" : ReadBody(up, uhead, urest, true);
      SendAll(client, uhead.substr(0, uhead.size() - 2) + "Connection: close\r\n\r\n" + ubody);
    }
  }
  close(up);
}

}  // namespace slipway::testing
