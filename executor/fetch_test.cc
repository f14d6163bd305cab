#include "executor/fetch.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <string>

#include "base/test_util.h"
#include "executor/tiny_http_server.h"
#include "image/digest.h"

namespace slipway::executor {
namespace {

TEST_CASE("fetch: a download, its digest, Last-Modified, redirects and HTTP errors") {
  testing::TinyHttpServer server;
  testing::TempDir tmp;
  auto f = FetchUrl(server.Url("/files/app.txt"), tmp.Join("a"));
  REQUIRE_MESSAGE(f.ok(), f.error().ToString());
  CHECK(testing::ReadFile(tmp.Join("a")) == "hello world\n");
  CHECK(f->digest == image::Sha256Digest("hello world\n"));
  CHECK(f->size == 12);
  REQUIRE(f->mtime.has_value());
  CHECK(*f->mtime == 1445412480);
  CHECK(f->filename == "app.txt");
  auto r = FetchUrl(server.Url("/moved"), tmp.Join("b"));
  REQUIRE(r.ok());
  CHECK(testing::ReadFile(tmp.Join("b")) == "hello world\n");
  auto missing = FetchUrl(server.Url("/nope"), tmp.Join("c"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message() == "downloading " + server.Url("/nope") + ": HTTP status 404");
  auto refused = FetchUrl("http://127.0.0.1:1/x", tmp.Join("d"));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().message().find("downloading http://127.0.0.1:1/x: ") == 0);
  auto with_creds = FetchUrl("http://me:s3cret@127.0.0.1:1/x", tmp.Join("e"));
  REQUIRE_FALSE(with_creds.ok());
  CHECK(with_creds.error().message().find("downloading http://127.0.0.1:1/x: ") == 0);
  CHECK(with_creds.error().message().find("s3cret") == std::string::npos);
}

TEST_CASE("fetch: URL file names and kinds") {
  CHECK(UrlFileName("https://example.com/dir/file.tar.gz?x=1#frag") == "file.tar.gz");
  CHECK(UrlFileName("https://example.com/dir/") == "dir");
  CHECK(UrlFileName("https://example.com") == "");
  CHECK(IsHttpUrl("https://x/y"));
  CHECK_FALSE(IsHttpUrl("ftp://x/y"));
  CHECK(IsGitUrl("https://github.com/a/b.git#main:sub"));
  CHECK(IsGitUrl("git@github.com:a/b.git"));
  CHECK_FALSE(IsGitUrl("https://example.com/a.tgz"));
}

TEST_CASE("fetch: credentials in URLs are never shown") {
  CHECK(RedactUrlCredentials("ADD https://me:s3cret@example.com/a.git#v1 /src/") ==
        "ADD https://example.com/a.git#v1 /src/");
  CHECK(RedactUrlCredentials("http://tok@h:8080/x http://u:p@h2/y") == "http://h:8080/x http://h2/y");
  CHECK(RedactUrlCredentials("https://example.com/a@b.tgz") == "https://example.com/a@b.tgz");
  CHECK(RedactUrlCredentials("https://u:p@host") == "https://host");
  CHECK(RedactUrlCredentials("no urls: a@b") == "no urls: a@b");
  CHECK(RedactUrlCredentials("https://example.com/?q=a@b") == "https://example.com/?q=a@b");
}

}  // namespace
}  // namespace slipway::executor
