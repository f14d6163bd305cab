// Shell-word processing for Dockerfile arguments: quotes, escapes, and $variable expansion with
// the modifiers BuildKit supports, then (for ProcessWords) word splitting.
//
//   ShellLex lex('\\');
//   Env env = {{"space", "abc  def"}};
//   lex.ProcessWords("hello${space}bye", env)   -> {"helloabc", "defbye"}
//   lex.ProcessWord("\"${HOME:-/root}\"/x", env) -> "/root/x"
//
// Rules (shared/reference/dockerfile-syntax.md §4.5): `'..'` is literal; `".."` expands `$` and its
// escape char escapes only `"`, `$` and itself; an unquoted escape char makes the next character
// literal (a trailing lone one is dropped); `$name`, `${name}`, positional `$1` and special `$@`
// etc. (empty), `$` before anything else is literal; modifiers `:-` `-` `:+` `+` `:?` `?` `#` `##`
// `%` `%%` `/` `//` with glob patterns (`*`, `?`, escapes; no brackets); an unset variable is "".
// Errors ("bad substitution", unterminated quotes, `${v:?}`) name what was wrong.
//
// Guarantees: pure (no I/O); allocates; recursion depth is bounded (nested `${}` deeper than
// kMaxDepth is an error), so hostile input cannot exhaust the stack.
#ifndef SLIPWAY_DOCKERFILE_SHELL_LEX_H_
#define SLIPWAY_DOCKERFILE_SHELL_LEX_H_

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace slipway::dockerfile {

using Env = std::map<std::string, std::string, std::less<>>;

class ShellLex {
 public:
  static constexpr int kMaxDepth = 64;

  explicit ShellLex(char escape = '\\') : escape_(escape) {}

  // Keep quotes and escapes in the output (used to find heredoc words and to split flags).
  void set_raw(bool raw) { raw_ = raw; }
  // Leave `$name` untouched when name is unset (display and heredoc detection only).
  void set_skip_unset(bool skip) { skip_unset_ = skip; }

  // One word: quotes removed, no splitting.
  Result<std::string> ProcessWord(std::string_view word, const Env& env) const;
  // Words split on unquoted whitespace, including whitespace produced by unquoted expansions.
  Result<std::vector<std::string>> ProcessWords(std::string_view text, const Env& env) const;

  // The names of variables the last call referenced that were unset (for UndefinedVar warnings).
  const std::set<std::string>& unset_names() const { return unset_; }

 private:
  friend class LexRun;
  char escape_;
  bool raw_ = false;
  bool skip_unset_ = false;
  mutable std::set<std::string> unset_;
};

}  // namespace slipway::dockerfile

#endif  // SLIPWAY_DOCKERFILE_SHELL_LEX_H_
