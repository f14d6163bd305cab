#include "image/registry.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/fs.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace slipway::image {

using nlohmann::json;

namespace {

constexpr char kManifestAccept[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof(b), "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// "https://host:5000/v2/x?y" -> "host:5000"
std::string HostOf(const std::string& url) {
  std::size_t s = url.find("://");
  s = s == std::string::npos ? 0 : s + 3;
  return url.substr(s, url.find('/', s) - s);
}

std::string OriginOf(const std::string& url) {
  std::size_t s = url.find("://");
  s = s == std::string::npos ? 0 : s + 3;
  return url.substr(0, url.find('/', s));
}

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string body;           // or:
  int body_fd = -1;           // read from body_offset, body_size bytes
  std::int64_t body_offset = 0, body_size = 0;
  int sink_fd = -1;           // the response body goes here (2xx only), hashed into sink_hash
  Sha256* sink_hash = nullptr;
};

struct Transfer {
  const Request* req = nullptr;
  Response* resp = nullptr;
  std::size_t body_pos = 0;
  std::int64_t fd_pos = 0;
  bool sink_error = false;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp->headers.clear();  // a new response (after 100 Continue)
    return size * n;
  }
  const std::size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    t->resp->headers[Lower(line.substr(0, colon))] = v;
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  const size_t total = size * n;
  status = t->resp->status;
  if (t->req->sink_fd >= 0 && status / 100 == 2) {
    if (t->req->sink_hash) t->req->sink_hash->Update(data, total);
    for (size_t off = 0; off < total;) {
      ssize_t w = write(t->req->sink_fd, data + off, total - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        t->sink_error = true;
        return 0;
      }
      off += static_cast<size_t>(w);
    }
    return total;
  }
  if (t->resp->body.size() < (8u << 20)) t->resp->body.append(data, total);
  return total;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t want = size * n;
  if (t->req->body_fd >= 0) {
    const std::int64_t left = t->req->body_size - t->fd_pos;
    if (left <= 0) return 0;
    const size_t k = static_cast<size_t>(std::min<std::int64_t>(left, static_cast<std::int64_t>(want)));
    ssize_t r = pread(t->req->body_fd, buf, k, t->req->body_offset + t->fd_pos);
    if (r < 0) return CURL_READFUNC_ABORT;
    t->fd_pos += r;
    return static_cast<size_t>(r);
  }
  const size_t k = std::min(want, t->req->body.size() - t->body_pos);
  std::memcpy(buf, t->req->body.data() + t->body_pos, k);
  t->body_pos += k;
  return k;
}

// An error from a registry's JSON error body: "MANIFEST_UNKNOWN: manifest unknown".
std::string RegistryError(const Response& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    std::string out;
    for (const auto& e : j["errors"]) {
      if (!out.empty()) out += "; ";
      out += e.value("code", "") + ": " + e.value("message", "");
    }
    if (!out.empty()) return out;
  }
  std::string b = r.body.substr(0, 200);
  while (!b.empty() && (b.back() == '\n' || b.back() == '\r')) b.pop_back();
  return b.empty() ? "(no details)" : b;
}

}  // namespace

Challenge ParseChallenge(const std::string& header) {
  Challenge c;
  std::size_t i = header.find(' ');
  c.scheme = Lower(header.substr(0, i));
  while (i != std::string::npos && i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const std::size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    const std::string key = Lower(header.substr(i, eq - i));
    std::string value;
    std::size_t j = eq + 1;
    if (j < header.size() && header[j] == '"') {
      ++j;
      while (j < header.size() && header[j] != '"') {
        if (header[j] == '\\' && j + 1 < header.size()) ++j;
        value += header[j++];
      }
      ++j;
    } else {
      while (j < header.size() && header[j] != ',') value += header[j++];
    }
    c.params[key] = value;
    i = j;
  }
  return c;
}

struct Registry::Impl {
  RegistryOptions o;
  RegistryStats* stats;
  CURL* curl = nullptr;
  std::map<std::string, std::string> tokens;  // "host scope" -> bearer token
  std::map<std::string, Challenge> challenges;  // host -> its last challenge
  std::set<std::string> pinged;

  Error Failure(const std::string& what, const Response& r);

  // GET /v2/: is this a registry, and which auth does it want?
  Result<void> Ping(const std::string& base) {
    if (pinged.count(base)) return Ok{};
    Request r;
    r.url = base + "/v2/";
    Result<Response> resp = Error("", 0);
    for (int attempt = 0;; ++attempt) {
      resp = Once(r);
      if ((resp.ok() && resp->status < 500) || attempt >= o.retries) break;
      ++stats->retries;
      std::this_thread::sleep_for(std::chrono::milliseconds(200L << attempt));
    }
    if (!resp.ok()) return std::move(resp).error();
    if (resp->status == 401) {
      challenges[HostOf(r.url)] = ParseChallenge(resp->Header("www-authenticate"));
    } else if (resp->status >= 500) {
      return Failure("GET " + r.url, *resp);
    } else if (resp->status != 200) {
      return Error(HostOf(r.url) + " does not look like a registry: GET /v2/ answered HTTP " +
                       std::to_string(resp->status),
                   EPROTO);
    }
    pinged.insert(base);
    return Ok{};
  }

  ~Impl() {
    if (curl) curl_easy_cleanup(curl);
  }

  void Log(const std::string& s) const {
    if (o.log) o.log(s);
  }

  std::string Scheme(const std::string& host) const {
    return o.insecure || o.insecure_registries.count(host) ? "http://" : "https://";
  }

  std::string Base(const Reference& r) const {
    std::string host = r.ApiHost();
    auto m = o.registry_map.find(r.registry);
    if (m != o.registry_map.end()) host = m->second;
    return Scheme(host) + host;
  }

  // Basic credentials for a host from config.json: "user:password", or "" (and an identity
  // token in *identity).
  std::string Credentials(const std::string& host, std::string* identity) const {
    std::string path = o.docker_config;
    if (path.empty()) {
      if (const char* d = getenv("DOCKER_CONFIG"); d && *d) {
        path = std::string(d) + "/config.json";
      } else if (const char* h = getenv("HOME"); h && *h) {
        path = std::string(h) + "/.docker/config.json";
      }
    }
    auto text = ReadWholeFile(path);
    if (!text.ok()) return "";
    auto j = json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("auths") || !j["auths"].is_object()) return "";
    std::vector<std::string> keys = {host, "https://" + host, "http://" + host,
                                     "https://" + host + "/v1/", "https://" + host + "/v2/"};
    if (host == "registry-1.docker.io" || host == "docker.io") {
      keys.push_back("https://index.docker.io/v1/");
      keys.push_back("docker.io");
      keys.push_back("index.docker.io");
    }
    for (const std::string& k : keys) {
      if (!j["auths"].contains(k) || !j["auths"][k].is_object()) continue;
      const json& a = j["auths"][k];
      if (a.contains("identitytoken") && a["identitytoken"].is_string()) {
        *identity = a["identitytoken"].get<std::string>();
      }
      if (a.contains("auth") && a["auth"].is_string()) return Base64Decode(a["auth"].get<std::string>());
      if (a.contains("username") && a.contains("password")) {
        return a["username"].get<std::string>() + ":" + a["password"].get<std::string>();
      }
      if (!identity->empty()) return "";
    }
    return "";
  }

  Result<Response> Once(const Request& req) {
    if (!curl) curl = curl_easy_init();
    if (!curl) return Error("starting libcurl", ENOMEM);
    curl_easy_reset(curl);
    Response resp;
    Transfer t;
    t.req = &req;
    t.resp = &resp;
    char err[CURL_ERROR_SIZE] = "";
    curl_slist* headers = nullptr;
    for (const std::string& h : req.headers) headers = curl_slist_append(headers, h.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);  // by hand: see Do()
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "slipway");
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    const std::string host = HostOf(req.url);
    if (o.skip_tls_verify) {
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    auto ca = o.ca_files.find(host);
    if (ca != o.ca_files.end()) curl_easy_setopt(curl, CURLOPT_CAINFO, ca->second.c_str());
    const bool has_body = req.body_fd >= 0 || !req.body.empty() || req.method == "PUT" ||
                          req.method == "POST" || req.method == "PATCH";
    if (req.method == "HEAD") {
      curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    } else if (has_body) {
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(curl, CURLOPT_READDATA, &t);
      const curl_off_t size = req.body_fd >= 0 ? req.body_size
                                               : static_cast<curl_off_t>(req.body.size());
      curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, size);
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.method != "GET") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    // The status is needed before the body arrives (to route it): read it from the header
    // callback's view via CURLINFO after the transfer; OnBody uses resp.status set here.
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, +[](char* d, size_t s, size_t n, void* u) {
      auto* tr = static_cast<Transfer*>(u);
      std::string line(d, s * n);
      if (line.rfind("HTTP/", 0) == 0) {
        const std::size_t sp = line.find(' ');
        tr->resp->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
      }
      return OnHeader(d, s, n, u);
    });
    ++stats->requests;
    const CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
    if (t.sink_error) return ErrnoError("writing a downloaded blob");
    if (rc != CURLE_OK) {
      return Error(req.method + " " + req.url + ": " + (err[0] ? err : curl_easy_strerror(rc)),
                   ECONNRESET);
    }
    Log(req.method + " " + req.url + " -> " + std::to_string(resp.status));
    return resp;
  }

  Result<std::string> Token(const std::string& host, const Challenge& c, const std::string& scope) {
    const std::string key = host + " " + scope;
    auto it = tokens.find(key);
    if (it != tokens.end()) return it->second;
    auto realm = c.params.find("realm");
    if (realm == c.params.end()) return Error(host + ": a Bearer challenge without a realm", EPROTO);
    std::string identity;
    const std::string creds = Credentials(host, &identity);
    Request r;
    std::string query = "service=" + UrlEncode(c.params.count("service") ? c.params.at("service") : "");
    for (std::size_t s = 0; s < scope.size();) {
      const std::size_t sp = scope.find(' ', s);
      query += "&scope=" + UrlEncode(scope.substr(s, sp == std::string::npos ? std::string::npos : sp - s));
      if (sp == std::string::npos) break;
      s = sp + 1;
    }
    if (!identity.empty()) {
      // OAuth2 with the refresh token docker login stored.
      r.method = "POST";
      r.url = realm->second;
      r.headers = {"Content-Type: application/x-www-form-urlencoded"};
      r.body = "grant_type=refresh_token&client_id=slipway&refresh_token=" + UrlEncode(identity) +
               "&" + query;
    } else {
      r.url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&") + query;
      if (!creds.empty()) r.headers.push_back("Authorization: Basic " + Base64Encode(creds));
    }
    SLIPWAY_ASSIGN_OR_RETURN(Response resp, Once(r));
    if (resp.status != 200) {
      return Error("getting a token from " + realm->second + " for " + scope + ": HTTP " +
                       std::to_string(resp.status) + " " + RegistryError(resp) +
                       (creds.empty() && identity.empty() ? " (no credentials for " + host +
                                                                " in the docker config.json)"
                                                          : ""),
                   EACCES);
    }
    auto j = json::parse(resp.body, nullptr, false);
    std::string token;
    if (j.is_object()) token = j.value("token", j.value("access_token", ""));
    if (token.empty()) return Error("the token server of " + host + " sent no token", EPROTO);
    tokens[key] = token;
    return token;
  }

  std::string AuthHeader(const std::string& host, const std::string& scope) {
    auto c = challenges.find(host);
    if (c == challenges.end()) return "";
    if (c->second.scheme == "basic") {
      std::string identity;
      const std::string creds = Credentials(host, &identity);
      return creds.empty() ? "" : "Authorization: Basic " + Base64Encode(creds);
    }
    auto t = tokens.find(host + " " + scope);
    return t == tokens.end() ? "" : "Authorization: Bearer " + t->second;
  }

  // One request with auth, redirects and retries. `scope` is the token scope for this
  // repository ("repository:x:pull,push").
  Result<Response> Do(Request req, const std::string& scope, bool retry_body = true) {
    const std::string registry_host = HostOf(req.url);
    int attempt = 0;
    bool authed_once = false;
    for (int redirects = 0;;) {
      Request r = req;
      const std::string host = HostOf(r.url);
      // Credentials go to the registry itself only, never to where it redirects us.
      if (host == registry_host) {
        const std::string auth = AuthHeader(host, scope);
        if (!auth.empty()) r.headers.push_back(auth);
      }
      if (r.sink_fd >= 0) {
        if (ftruncate(r.sink_fd, 0) != 0 || lseek(r.sink_fd, 0, SEEK_SET) != 0) {
          return ErrnoError("resetting a download");
        }
        if (r.sink_hash) r.sink_hash->Reset();
      }
      auto resp = Once(r);
      const bool transient = !resp.ok() || resp->status >= 500 || resp->status == 429;
      if (transient && retry_body && attempt < o.retries) {
        ++attempt;
        ++stats->retries;
        long wait_ms = 200L << (attempt - 1);
        if (resp.ok() && resp->status == 429) {
          const std::string ra = resp->Header("retry-after");
          if (!ra.empty() && std::all_of(ra.begin(), ra.end(), ::isdigit)) {
            wait_ms = std::min(60000L, std::atol(ra.c_str()) * 1000L);
          }
        }
        Log("retrying " + r.method + " " + r.url + " in " + std::to_string(wait_ms) + " ms (" +
            (resp.ok() ? "HTTP " + std::to_string(resp->status) : resp.error().message()) + ")");
        std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
        continue;
      }
      if (!resp.ok()) return std::move(resp).error();
      if (resp->status == 401 && host == registry_host && !authed_once) {
        authed_once = true;
        Challenge c = ParseChallenge(resp->Header("www-authenticate"));
        challenges[host] = c;
        if (c.scheme == "bearer") {
          SLIPWAY_ASSIGN_OR_RETURN(std::string token, Token(host, c, scope));
          (void)token;
        } else if (c.scheme == "basic") {
          std::string identity;
          if (Credentials(host, &identity).empty()) {
            return Error(r.method + " " + r.url + ": the registry wants a login (Basic) and the "
                         "docker config.json has no credentials for " + host,
                         EACCES);
          }
        }
        continue;
      }
      if (resp->status / 100 == 3 && !resp->Header("location").empty()) {
        if (++redirects > 10) return Error(r.method + " " + r.url + ": too many redirects", ELOOP);
        std::string loc = resp->Header("location");
        if (loc.rfind("http://", 0) != 0 && loc.rfind("https://", 0) != 0) {
          loc = OriginOf(r.url) + (loc.front() == '/' ? "" : "/") + loc;
        }
        req.url = loc;
        if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH") break;
        continue;
      }
      return resp;
    }
    return Error(req.method + " " + req.url + ": unexpected redirect of an upload", EPROTO);
  }

  Error FailureImpl(const std::string& what, const Response& r) {
    Error e(what + ": HTTP " + std::to_string(r.status) + ": " + RegistryError(r),
            r.status == 401 || r.status == 403 ? EACCES : r.status == 404 ? ENOENT : EIO);
    if (r.status == 401 || r.status == 403) {
      e.SetHint("check the credentials in the docker config.json ($DOCKER_CONFIG)");
    }
    return e;
  }

  std::string Resolve(const std::string& base, const std::string& location) {
    if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
    return base + (location.front() == '/' ? "" : "/") + location;
  }

  Result<void> UploadBlob(const Reference& ref, const PushBlob& b, const std::string& scope) {
    const std::string base = Base(ref);
    const std::string name = ref.repository;
    // Already there?
    Request head;
    head.method = "HEAD";
    head.url = base + "/v2/" + name + "/blobs/" + b.digest;
    SLIPWAY_ASSIGN_OR_RETURN(Response h, Do(head, scope));
    if (h.status == 200) {
      ++stats->blobs_skipped;
      return Ok{};
    }
    UniqueFd fd(open(b.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("opening " + b.path);
    for (int attempt = 0;; ++attempt) {
      Request start;
      start.method = "POST";
      start.url = base + "/v2/" + name + "/blobs/uploads/";
      if (!b.mount_from.empty()) {
        start.url += "?mount=" + UrlEncode(b.digest) + "&from=" + UrlEncode(b.mount_from);
      }
      start.headers = {"Content-Length: 0"};
      SLIPWAY_ASSIGN_OR_RETURN(Response s, Do(start, scope));
      if (s.status == 201 && !b.mount_from.empty()) {
        ++stats->blobs_mounted;
        return Ok{};
      }
      if (s.status != 202) return Failure("starting the upload of " + b.digest, s);
      std::string location = Resolve(base, s.Header("location"));
      auto done = Send(location, fd.get(), b, scope, base);
      if (done.ok()) {
        ++stats->blobs_uploaded;
        return Ok{};
      }
      if (attempt >= o.retries) return std::move(done).error();
      ++stats->retries;
      Log("restarting the upload of " + b.digest + ": " + done.error().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(200L << attempt));
    }
  }

  // Sends the blob to an upload session (whole, or in chunks) and closes it with its digest.
  Result<void> Send(std::string location, int fd, const PushBlob& b, const std::string& scope,
                    const std::string& base) {
    auto with_digest = [&](const std::string& loc) {
      return loc + (loc.find('?') == std::string::npos ? "?" : "&") + "digest=" + UrlEncode(b.digest);
    };
    if (o.chunk_size == 0 || b.size <= static_cast<std::int64_t>(o.chunk_size)) {
      Request put;
      put.method = "PUT";
      put.url = with_digest(location);
      put.headers = {"Content-Type: application/octet-stream"};
      put.body_fd = fd;
      put.body_size = b.size;
      SLIPWAY_ASSIGN_OR_RETURN(Response p, Do(put, scope, false));
      if (p.status != 201) return Failure("uploading " + b.digest, p);
      return Ok{};
    }
    std::int64_t offset = 0;
    while (offset < b.size) {
      const std::int64_t n = std::min<std::int64_t>(static_cast<std::int64_t>(o.chunk_size), b.size - offset);
      Request patch;
      patch.method = "PATCH";
      patch.url = location;
      patch.headers = {"Content-Type: application/octet-stream",
                       "Content-Range: " + std::to_string(offset) + "-" + std::to_string(offset + n - 1)};
      patch.body_fd = fd;
      patch.body_offset = offset;
      patch.body_size = n;
      auto p = Do(patch, scope, false);
      if (p.ok() && p->status == 202) {
        location = Resolve(base, p->Header("location"));
        offset += n;
        continue;
      }
      // 416 or a lost connection: ask where the registry is, and go on from there.
      Request status;
      status.url = location;
      SLIPWAY_ASSIGN_OR_RETURN(Response st, Do(status, scope));
      if (st.status != 204) {
        return p.ok() ? Failure("uploading " + b.digest, *p) : std::move(p).error();
      }
      const std::string range = st.Header("range");  // "0-1234"
      const std::size_t dash = range.find('-');
      const std::int64_t have = dash == std::string::npos ? -1 : std::atoll(range.c_str() + dash + 1);
      if (!st.Header("location").empty()) location = Resolve(base, st.Header("location"));
      if (have + 1 == offset && !p.ok()) return std::move(p).error();  // no progress at all
      Log("resuming the upload of " + b.digest + " at " + std::to_string(have + 1));
      offset = have + 1;
    }
    Request put;
    put.method = "PUT";
    put.url = with_digest(location);
    put.headers = {"Content-Length: 0"};
    SLIPWAY_ASSIGN_OR_RETURN(Response p, Do(put, scope, false));
    if (p.status != 201) return Failure("closing the upload of " + b.digest, p);
    return Ok{};
  }

  Result<std::string> GetManifest(const std::string& base, const std::string& name,
                                  const std::string& target, const std::string& scope,
                                  std::string* media_type) {
    Request r;
    r.url = base + "/v2/" + name + "/manifests/" + target;
    r.headers = {kManifestAccept};
    SLIPWAY_ASSIGN_OR_RETURN(Response resp, Do(r, scope));
    if (resp.status != 200) return Failure("getting the manifest " + name + ":" + target, resp);
    if (IsSha256Digest(target) && Sha256Digest(resp.body) != target) {
      return Error("the manifest " + name + "@" + target + " does not match its digest", EINVAL);
    }
    *media_type = resp.Header("content-type");
    auto j = json::parse(resp.body, nullptr, false);
    if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string()) {
      *media_type = j["mediaType"].get<std::string>();
    }
    return resp.body;
  }

  Result<std::string> GetBlob(const std::string& base, const std::string& name,
                              const std::string& digest, const std::string& scope,
                              const std::string& dir) {
    const std::string final_path = dir + "/sha256/" + digest.substr(7);
    if (access(final_path.c_str(), F_OK) == 0) return final_path;  // verified when stored
    for (const std::string& d : {dir, dir + "/sha256"}) {
      if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("creating " + d);
    }
    std::string tmp = dir + "/sha256/.download-XXXXXX";
    UniqueFd fd(mkstemp(tmp.data()));
    if (!fd.valid()) return ErrnoError("creating a download file in " + dir);
    Sha256 hash;
    Request r;
    r.url = base + "/v2/" + name + "/blobs/" + digest;
    r.sink_fd = fd.get();
    r.sink_hash = &hash;
    auto resp = Do(r, scope);
    if (!resp.ok() || resp->status != 200) {
      unlink(tmp.c_str());
      if (!resp.ok()) return std::move(resp).error();
      return Failure("downloading the blob " + digest + " of " + name, *resp);
    }
    const std::string got = hash.Digest();
    if (got != digest) {
      unlink(tmp.c_str());
      return Error("the blob " + digest + " of " + name + " downloaded as " + got, EINVAL);
    }
    if (rename(tmp.c_str(), final_path.c_str()) != 0) {
      unlink(tmp.c_str());
      return ErrnoError("storing " + final_path);
    }
    return final_path;
  }

  Result<PulledImage> PullFrom(const Reference& ref, const std::string& base,
                               const Platform& platform, const std::string& dir) {
    const std::string scope = "repository:" + ref.repository + ":pull";
    SLIPWAY_RETURN_IF_ERROR(Ping(base));
    PulledImage img;
    img.ref = ref;
    std::string media_type;
    SLIPWAY_ASSIGN_OR_RETURN(std::string bytes,
                             GetManifest(base, ref.repository, ref.Target(), scope, &media_type));
    std::string digest = Sha256Digest(bytes);
    if (media_type == kMediaTypeIndex || media_type == kDockerManifestList) {
      SLIPWAY_ASSIGN_OR_RETURN(Index index, IndexFromJson(bytes));
      const Descriptor* pick = nullptr;
      for (const Descriptor& d : index.manifests) {
        if (d.platform && PlatformMatches(d.platform, platform)) {
          pick = &d;
          break;
        }
      }
      if (!pick) {
        return Error(ref.ToString() + " has no image for " + platform.os + "/" +
                         platform.architecture + (platform.variant.empty() ? "" : "/" + platform.variant),
                     ENOENT);
      }
      digest = pick->digest;
      SLIPWAY_ASSIGN_OR_RETURN(bytes, GetManifest(base, ref.repository, digest, scope, &media_type));
    }
    img.manifest_digest = digest;
    SLIPWAY_ASSIGN_OR_RETURN(Manifest m, ManifestFromJson(bytes));
    SLIPWAY_ASSIGN_OR_RETURN(std::string config_path,
                             GetBlob(base, ref.repository, m.config.digest, scope, dir));
    SLIPWAY_ASSIGN_OR_RETURN(img.config_bytes, ReadWholeFile(config_path));
    SLIPWAY_ASSIGN_OR_RETURN(img.config, ConfigFromJson(img.config_bytes));
    if (img.config.diff_ids.size() != m.layers.size()) {
      return Error(ref.ToString() + ": the manifest has " + std::to_string(m.layers.size()) +
                       " layers, the config " + std::to_string(img.config.diff_ids.size()),
                   EINVAL);
    }
    for (const Descriptor& l : m.layers) {
      SLIPWAY_ASSIGN_OR_RETURN(std::string path, GetBlob(base, ref.repository, l.digest, scope, dir));
      img.layers.push_back({l.digest, l.media_type, path, l.size});
    }
    return img;
  }
};

Error Registry::Impl::Failure(const std::string& what, const Response& r) {
  return FailureImpl(what, r);
}

Registry::Registry(RegistryOptions options) : impl_(std::make_unique<Impl>()) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->o = std::move(options);
  impl_->stats = &stats_;
}

Registry::~Registry() = default;

Result<PulledImage> Registry::Pull(const Reference& ref, const Platform& platform,
                                   const std::string& blob_dir) {
  // docker.io pulls try the mirrors first.
  if (ref.registry == "docker.io" && !impl_->o.registry_map.count("docker.io")) {
    for (const std::string& m : impl_->o.mirrors) {
      auto img = impl_->PullFrom(ref, impl_->Scheme(m) + m, platform, blob_dir);
      if (img.ok()) return img;
      impl_->Log("mirror " + m + " failed: " + img.error().ToString());
    }
  }
  auto img = impl_->PullFrom(ref, impl_->Base(ref), platform, blob_dir);
  if (!img.ok()) return std::move(img.error().AddContext("pulling " + ref.ToString()));
  return img;
}

Result<std::string> Registry::Push(const Reference& ref, const std::vector<PushBlob>& blobs,
                                   const std::string& manifest, const std::string& media_type) {
  std::string scope = "repository:" + ref.repository + ":pull,push";
  std::set<std::string> sources;
  for (const PushBlob& b : blobs) {
    if (!b.mount_from.empty() && b.mount_from != ref.repository) sources.insert(b.mount_from);
  }
  for (const std::string& s : sources) scope += " repository:" + s + ":pull";
  if (auto p = impl_->Ping(impl_->Base(ref)); !p.ok()) {
    return std::move(p.error().AddContext("pushing to " + ref.ToString()));
  }
  for (const PushBlob& b : blobs) {
    auto up = impl_->UploadBlob(ref, b, scope);
    if (!up.ok()) return std::move(up.error().AddContext("pushing to " + ref.ToString()));
  }
  Request put;
  put.method = "PUT";
  put.url = impl_->Base(ref) + "/v2/" + ref.repository + "/manifests/" +
            (ref.tag.empty() ? ref.digest : ref.tag);
  put.headers = {"Content-Type: " + media_type};
  put.body = manifest;
  auto resp = impl_->Do(put, scope);
  if (!resp.ok()) return std::move(resp.error().AddContext("pushing to " + ref.ToString()));
  if (resp->status != 201) {
    return impl_->Failure("pushing the manifest to " + ref.ToString(), *resp);
  }
  return Sha256Digest(manifest);
}

}  // namespace slipway::image
