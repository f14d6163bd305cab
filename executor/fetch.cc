#include "executor/fetch.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "base/unique_fd.h"
#include "image/digest.h"

namespace slipway::executor {
namespace {

struct Sink {
  int fd = -1;
  image::Sha256 hash;
  std::uint64_t size = 0;
  int error = 0;
};

size_t Write(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  const size_t total = size * n;
  for (size_t off = 0; off < total;) {
    ssize_t w = write(s->fd, data + off, total - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      s->error = errno;
      return 0;
    }
    off += static_cast<size_t>(w);
  }
  s->hash.Update(data, total);
  s->size += total;
  return total;
}

}  // namespace

bool IsHttpUrl(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0;
}

bool IsGitUrl(const std::string& s) {
  if (s.rfind("git@", 0) == 0 || s.rfind("git://", 0) == 0) return true;
  const std::string path = s.substr(0, s.find('#'));
  return IsHttpUrl(s) && path.size() > 4 && path.compare(path.size() - 4, 4, ".git") == 0;
}

std::string RedactUrlCredentials(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  for (std::size_t scheme; (scheme = text.find("://", pos)) != std::string::npos;) {
    const std::size_t host = scheme + 3;
    const std::size_t end = text.find_first_of("/ \t\n\"'#?", host);
    const std::size_t at = text.rfind('@', end == std::string::npos ? text.size() : end);
    out.append(text, pos, host - pos);
    pos = host;
    if (at != std::string::npos && at >= host && (end == std::string::npos || at < end)) {
      pos = at + 1;  // drop user:password@
    }
  }
  return out + text.substr(pos);
}

std::string UrlFileName(const std::string& url) {
  std::string path = url;
  const std::size_t scheme = path.find("://");
  if (scheme != std::string::npos) path = path.substr(scheme + 3);
  path = path.substr(0, path.find_first_of("?#"));
  const std::size_t slash = path.find('/');
  if (slash == std::string::npos) return "";
  path = path.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  const std::size_t last = path.rfind('/');
  return last == std::string::npos ? path : path.substr(last + 1);
}

Result<Fetched> FetchUrl(const std::string& url, const std::string& file) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  UniqueFd fd(open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError("creating " + file);
  Sink sink;
  sink.fd = fd.get();
  CURL* curl = curl_easy_init();
  if (!curl) return Error("starting libcurl", ENOMEM);
  char err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(curl, CURLOPT_FILETIME, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "slipway");
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_off_t filetime = -1;
  curl_easy_getinfo(curl, CURLINFO_FILETIME_T, &filetime);
  curl_easy_cleanup(curl);
  if (sink.error) return ErrnoError("writing " + file, sink.error);
  if (rc != CURLE_OK) {
    return Error("downloading " + RedactUrlCredentials(url) + ": " +
                     (err[0] ? err : curl_easy_strerror(rc)),
                 EIO);
  }
  if (status >= 400) {
    return Error("downloading " + RedactUrlCredentials(url) + ": HTTP status " +
                     std::to_string(status),
                 EIO);
  }
  Fetched f;
  f.digest = sink.hash.Digest();
  f.size = sink.size;
  if (filetime >= 0) f.mtime = static_cast<std::int64_t>(filetime);
  f.filename = UrlFileName(url);
  return f;
}

}  // namespace slipway::executor
