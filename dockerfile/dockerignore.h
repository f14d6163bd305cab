// .dockerignore: which context paths COPY and ADD must not see.
//
//   SLIPWAY_ASSIGN_OR_RETURN(Dockerignore ig, Dockerignore::Parse(text, ".dockerignore"));
//   if (ig.Excluded("node_modules/x/y.js")) skip();
//
// Rules (shared/reference/dockerfile-syntax.md §4.8, moby/patternmatcher): a BOM is stripped; a
// line starting with '#' is a comment; lines are trimmed and empty ones skipped; a leading '!'
// makes an exception; patterns are cleaned (filepath.Clean) and one leading '/' removed. `*`
// matches within a segment, `?` one character, `[...]` a class, `\` escapes, `**` any number of
// segments (including none). Patterns apply in order and the last match wins; a pattern that
// matches a parent directory matches everything under it. "." is never excluded.
//
// Guarantees: pure; allocates.
#ifndef SLIPWAY_DOCKERFILE_DOCKERIGNORE_H_
#define SLIPWAY_DOCKERFILE_DOCKERIGNORE_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace slipway::dockerfile {

class Dockerignore {
 public:
  struct Pattern {
    std::string text;  // cleaned
    bool exception = false;
    std::vector<std::string> segments;
  };

  static Result<Dockerignore> Parse(std::string_view text, const std::string& file);

  // `path` is relative to the context root, '/'-separated ("a/b/c.txt"); it is cleaned first.
  bool Excluded(std::string_view path) const;
  // Whether any exception ('!') exists: then a walker must look inside excluded directories.
  bool HasExceptions() const;
  const std::vector<Pattern>& patterns() const { return patterns_; }

 private:
  std::vector<Pattern> patterns_;
};

// Go's filepath.Match on one path segment ('*', '?', '[...]' with '^' negation and ranges, '\\'
// escapes); a malformed pattern matches nothing. Shared by .dockerignore and COPY/ADD sources.
bool MatchGlobSegment(std::string_view pattern, std::string_view name);

// Which ignore file applies: "<dockerfile>.dockerignore" beside the Dockerfile wins over the
// context's ".dockerignore". `exists` tells whether a path exists. Returns "" when neither does.
std::string ChooseIgnoreFile(const std::string& dockerfile_path, const std::string& context_dir,
                             const std::function<bool(const std::string&)>& exists);

}  // namespace slipway::dockerfile

#endif  // SLIPWAY_DOCKERFILE_DOCKERIGNORE_H_
