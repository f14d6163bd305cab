#include "dockerfile/dockerignore.h"

#include <cerrno>

#include "base/path.h"

namespace slipway::dockerfile {
namespace {

std::vector<std::string> Split(std::string_view p) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    out.emplace_back(p.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Matches one segment against a glob segment (Go filepath.Match within one name). Sets *bad on a
// malformed pattern.
bool MatchSegment(std::string_view pat, std::string_view s, bool* bad) {
  std::size_t p = 0, i = 0;
  std::size_t star_p = std::string_view::npos, star_i = 0;
  while (true) {
    if (p < pat.size()) {
      char c = pat[p];
      if (c == '*') {
        star_p = p++;
        star_i = i;
        continue;
      }
      if (i < s.size()) {
        if (c == '?') {
          ++p;
          ++i;
          continue;
        }
        if (c == '[') {
          std::size_t q = p + 1;
          bool negate = q < pat.size() && pat[q] == '^';
          if (negate) ++q;
          bool matched = false, first = true;
          while (q < pat.size() && (pat[q] != ']' || first)) {
            first = false;
            char lo = pat[q];
            if (lo == '\\' && q + 1 < pat.size()) lo = pat[++q];
            char hi = lo;
            if (q + 2 < pat.size() && pat[q + 1] == '-' && pat[q + 2] != ']') {
              hi = pat[q + 2];
              if (hi == '\\' && q + 3 < pat.size()) hi = pat[++q + 2];
              q += 2;
            }
            if (s[i] >= lo && s[i] <= hi) matched = true;
            ++q;
          }
          if (q >= pat.size()) {
            *bad = true;
            return false;
          }
          if (matched != negate) {
            p = q + 1;
            ++i;
            continue;
          }
        } else if (c == '\\') {
          if (p + 1 >= pat.size()) {
            *bad = true;
            return false;
          }
          if (pat[p + 1] == s[i]) {
            p += 2;
            ++i;
            continue;
          }
        } else if (c == s[i]) {
          ++p;
          ++i;
          continue;
        }
      }
    } else if (i == s.size()) {
      return true;
    }
    if (star_p == std::string_view::npos || star_i >= s.size()) {
      // Validate the rest of the pattern for errors before giving up.
      return false;
    }
    p = star_p + 1;
    i = ++star_i;
  }
}

bool MatchSegments(const std::vector<std::string>& pat, std::size_t pi,
                   const std::vector<std::string>& path, std::size_t si) {
  if (pi == pat.size()) return si == path.size();
  if (pat[pi] == "**") {
    for (std::size_t k = si; k <= path.size(); ++k) {
      if (MatchSegments(pat, pi + 1, path, k)) return true;
    }
    return false;
  }
  if (si == path.size()) return false;
  bool bad = false;
  return MatchSegment(pat[pi], path[si], &bad) && MatchSegments(pat, pi + 1, path, si + 1);
}

// A pattern is validated the way moby does it: by matching it against ".".
bool ValidPattern(const std::string& p) {
  for (const std::string& seg : Split(p)) {
    if (seg == "**") continue;
    bool bad = false;
    MatchSegment(seg, ".", &bad);
    // Also probe with a character that reaches bracket expressions.
    for (char c : seg) {
      if (c == '[') {
        MatchSegment(seg, std::string(seg.size() + 1, 'x'), &bad);
        break;
      }
    }
    if (bad) return false;
    if (!seg.empty() && seg.back() == '\\' && (seg.size() < 2 || seg[seg.size() - 2] != '\\')) {
      return false;
    }
  }
  return true;
}

}  // namespace

Result<Dockerignore> Dockerignore::Parse(std::string_view text, const std::string& file) {
  Dockerignore ig;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  int line_no = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (!line.empty() && line[0] == '#') continue;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
      line.remove_prefix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
      line.remove_suffix(1);
    if (line.empty()) continue;
    Pattern p;
    if (line[0] == '!') {
      if (line.size() == 1) {
        return Error(file + ":" + std::to_string(line_no) + ": illegal exclusion pattern: \"!\"",
                     EINVAL);
      }
      p.exception = true;
      line.remove_prefix(1);
      while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front())))
        line.remove_prefix(1);
    }
    std::string cleaned = CleanPath(line);
    if (cleaned.size() > 1 && cleaned[0] == '/') cleaned.erase(0, 1);
    if (!ValidPattern(cleaned)) {
      return Error(file + ":" + std::to_string(line_no) + ": syntax error in pattern \"" +
                       std::string(line) + "\"",
                   EINVAL);
    }
    p.text = cleaned;
    p.segments = Split(cleaned);
    ig.patterns_.push_back(std::move(p));
  }
  return ig;
}

bool MatchGlobSegment(std::string_view pattern, std::string_view name) {
  bool bad = false;
  return MatchSegment(pattern, name, &bad) && !bad;
}

bool Dockerignore::Excluded(std::string_view raw) const {
  std::string path = CleanPath(raw);
  if (path.size() > 1 && path[0] == '/') path.erase(0, 1);
  if (path == ".") return false;
  const std::vector<std::string> segs = Split(path);
  bool excluded = false;
  for (const Pattern& p : patterns_) {
    bool match = false;
    // The path itself, or any of its parent directories.
    for (std::size_t n = segs.size(); n >= 1 && !match; --n) {
      std::vector<std::string> prefix(segs.begin(), segs.begin() + n);
      match = MatchSegments(p.segments, 0, prefix, 0);
    }
    if (match) excluded = !p.exception;
  }
  return excluded;
}

bool Dockerignore::HasExceptions() const {
  for (const Pattern& p : patterns_) {
    if (p.exception) return true;
  }
  return false;
}

std::string ChooseIgnoreFile(const std::string& dockerfile_path, const std::string& context_dir,
                             const std::function<bool(const std::string&)>& exists) {
  const std::string specific = dockerfile_path + ".dockerignore";
  if (exists(specific)) return specific;
  const std::string general = context_dir + "/.dockerignore";
  if (exists(general)) return general;
  return "";
}

}  // namespace slipway::dockerfile
