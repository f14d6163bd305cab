// Test fixtures for registries (testonly): Debian's docker-registry on 127.0.0.1, and a
// fault-injecting HTTP proxy in front of it.
//
//   RegistryServer reg(tmp, /*htpasswd_user=*/"", "");      // a real registry, random port
//   FaultProxy proxy(reg.port());                            // 127.0.0.1:proxy.port() -> reg
//   proxy.FailNext(2);                                       // the next two requests get 500
//
// The proxy handles one request per connection (it answers "Connection: close"), which is all
// a client needs; it can also drop a connection in the middle of a request body, act as a
// Bearer-token front (a /token endpoint that wants Basic credentials), redirect blob downloads
// to another proxy, and records the headers each request carried.
#ifndef SLIPWAY_IMAGE_REGISTRY_TEST_UTIL_H_
#define SLIPWAY_IMAGE_REGISTRY_TEST_UTIL_H_

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace slipway::testing {

class RegistryServer {
 public:
  // With a user, the registry wants Basic auth (htpasswd, bcrypt).
  RegistryServer(const std::string& dir, const std::string& user, const std::string& password,
                 bool tls = false);
  // With tls: the PEM of the self-signed certificate it serves (for 127.0.0.1).
  std::string ca_file() const { return ca_file_; }
  ~RegistryServer();
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  int pid_ = -1;
  std::string ca_file_;
};

struct SeenRequest {
  std::string method, path, authorization;
};

class FaultProxy {
 public:
  explicit FaultProxy(int upstream_port);
  ~FaultProxy();
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

  // The next `n` requests whose "METHOD path" contains `match` are answered 500.
  void FailNext(int n, const std::string& match = "");
  // The next request matching `match` is cut off halfway through its body.
  void DropNext(const std::string& match);
  // Requests must carry "Bearer <token>"; GET /token with Basic user:password hands it out.
  void RequireBearer(const std::string& user, const std::string& password, const std::string& token);
  // GET .../blobs/... is answered 307 to `url_prefix` + path.
  void RedirectBlobs(const std::string& url_prefix);

  std::vector<SeenRequest> seen();

 private:
  void Serve();
  void Handle(int client);

  int listen_fd_ = -1;
  int port_ = 0;
  int upstream_port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  int fail_n_ = 0;
  std::string fail_match_, drop_match_;
  bool drop_ = false;
  std::string bearer_user_, bearer_password_, bearer_token_;
  std::string redirect_prefix_;
  std::vector<SeenRequest> seen_;
};

}  // namespace slipway::testing

#endif  // SLIPWAY_IMAGE_REGISTRY_TEST_UTIL_H_
