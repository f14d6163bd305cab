#include "image/reference.h"

#include <cerrno>

#include "image/digest.h"

namespace slipway::image {
namespace {

bool Lower(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool ValidComponent(std::string_view c) {
  if (c.empty() || !Lower(c.front()) || !Lower(c.back())) return false;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const char ch = c[i];
    if (Lower(ch)) continue;
    if (ch != '.' && ch != '_' && ch != '-') return false;
    // Separators: '.', '_', '__' or any run of '-'.
    if (ch == '.' && !Lower(c[i + 1])) return false;
    if (ch == '_' && !(Lower(c[i + 1]) || (c[i + 1] == '_' && Lower(c[i + 2])))) return false;
  }
  return true;
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(t[0])) return false;
  for (char c : t) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string Reference::ToString() const {
  std::string s = registry + "/" + repository;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::FamiliarName() const {
  if (registry != "docker.io") return registry + "/" + repository;
  return repository.rfind("library/", 0) == 0 ? repository.substr(8) : repository;
}

std::string Reference::ApiHost() const {
  return registry == "docker.io" ? "registry-1.docker.io" : registry;
}

Result<Reference> ParseReference(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Error("invalid image reference \"" + std::string(text) + "\": " + why, EINVAL);
  };
  if (text.empty()) return bad("empty");
  Reference r;
  std::string rest(text);
  const std::size_t at = rest.find('@');
  if (at != std::string::npos) {
    r.digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    if (!IsSha256Digest(r.digest)) return bad("the digest must be sha256:<64 hex digits>");
  }
  const std::size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    const std::string first = rest.substr(0, slash);
    if (first.find_first_of(".:") != std::string::npos || first == "localhost") {
      r.registry = first;
      rest = rest.substr(slash + 1);
    }
  }
  const std::size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!ValidTag(r.tag)) return bad("invalid tag \"" + r.tag + "\"");
  }
  if (r.registry.empty()) r.registry = "docker.io";
  if (r.registry == "index.docker.io" || r.registry == "registry-1.docker.io") {
    r.registry = "docker.io";
  }
  if (r.registry == "docker.io" && rest.find('/') == std::string::npos) rest = "library/" + rest;
  std::size_t start = 0;
  while (true) {
    const std::size_t s = rest.find('/', start);
    const std::string_view c =
        std::string_view(rest).substr(start, s == std::string::npos ? std::string::npos : s - start);
    if (!ValidComponent(c)) {
      return bad("invalid repository name \"" + rest +
                 "\" (lower-case letters, digits and separators)");
    }
    if (s == std::string::npos) break;
    start = s + 1;
  }
  r.repository = rest;
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  return r;
}

}  // namespace slipway::image
