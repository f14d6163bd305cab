#include "base/path.h"

#include <algorithm>
#include <vector>

namespace slipway {

std::string CleanPath(std::string_view path) {
  const bool rooted = !path.empty() && path[0] == '/';
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view seg = path.substr(i, j - i);
    i = j + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty() && out.back() != "..") {
        out.pop_back();
      } else if (!rooted) {
        out.push_back(seg);
      }
      continue;
    }
    out.push_back(seg);
  }
  std::string s = rooted ? "/" : "";
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (k) s += '/';
    s.append(out[k]);
  }
  return s.empty() ? "." : s;
}

bool TreeLess(std::string_view a, std::string_view b) {
  auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
  if (ia == a.end() || ib == b.end()) return ia == a.end() && ib != b.end();
  auto rank = [](char c) { return c == '/' ? 0 : static_cast<unsigned char>(c) + 1; };
  return rank(*ia) < rank(*ib);
}

}  // namespace slipway
