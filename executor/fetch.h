// ADD from http(s) URLs: downloaded with libcurl into a file, with its sha256 and Last-Modified.
//
//   SLIPWAY_ASSIGN_OR_RETURN(Fetched f, FetchUrl("https://example.com/a.tgz", "/tmp/x/a.tgz"));
//   if (f.digest != wanted) ...
//
// Redirects are followed (at most 10); an HTTP error status is an error quoting it; no
// credentials are sent.
#ifndef SLIPWAY_EXECUTOR_FETCH_H_
#define SLIPWAY_EXECUTOR_FETCH_H_

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"

namespace slipway::executor {

struct Fetched {
  std::string digest;                   // "sha256:..."
  std::uint64_t size = 0;
  std::optional<std::int64_t> mtime;    // Last-Modified, seconds since 1970
  std::string filename;                 // the last component of the URL path
};

Result<Fetched> FetchUrl(const std::string& url, const std::string& file);

// The file name ADD gives a URL when the destination is a directory ("" when there is none).
std::string UrlFileName(const std::string& url);

bool IsHttpUrl(const std::string& s);
bool IsGitUrl(const std::string& s);

// `text` with the user:password@ of every SCHEME://user:password@host removed, for what is shown
// or kept in the image's history.
std::string RedactUrlCredentials(const std::string& text);

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_FETCH_H_
