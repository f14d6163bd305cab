// The Dockerfile lexer/parser: text -> directives + a list of instruction nodes.
//
//   SLIPWAY_ASSIGN_OR_RETURN(ParseResult r, Parse(text, "Dockerfile"));
//   for (const Node& n : r.nodes) ...  // n.keyword == "run", n.line == 7, n.flags, n.args
//
// What it does (shared/reference/dockerfile-syntax.md §4.1-4.2, 4.4): strips a BOM; reads the
// `syntax`, `escape` and `check` directives at the top (an unknown key ends them, a duplicate is an
// error); joins continuation lines (the escape char as the last non-blank character), dropping
// comment lines inside a continuation and warning on empty ones; keeps continuation lines' leading
// whitespace; splits off leading `--flag` words; reads heredoc bodies for RUN, COPY and ADD (also
// under ONBUILD). It does not interpret arguments: instructions.h does.
//
// Errors carry "file:line:column: message". Guarantees: pure; allocates; linear in the input.
#ifndef SLIPWAY_DOCKERFILE_PARSER_H_
#define SLIPWAY_DOCKERFILE_PARSER_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace slipway::dockerfile {

inline constexpr std::size_t kMaxLineBytes = 65535;

struct Location {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string ToString() const;
};

// An Error whose message is "file:line:column: message".
Error SyntaxError(const Location& at, const std::string& message);

struct Warning {
  Location at;
  std::string rule;  // BuildKit's lint rule name, e.g. "NoEmptyContinuation"
  std::string message;
  std::string ToString() const;  // "Dockerfile:3:1: NoEmptyContinuation: ..."
};

struct Heredoc {
  std::string name;     // the delimiter word, unquoted
  std::string content;  // the body, each line ending in "\n"
  bool expand = true;   // false when the delimiter was quoted
  bool chomp = false;   // <<- : leading tabs stripped
  int fd = -1;          // the n of n<<EOF, or -1
};

struct Directives {
  char escape = '\\';
  std::optional<std::string> syntax;  // the frontend image: the first word of the value
  std::optional<std::string> check;   // as written
  // The parsed check directive: "skip=RuleA,RuleB;error=true" ("all" skips every rule).
  std::vector<std::string> check_skip;
  bool check_error = false;
};

struct Node {
  std::string keyword;             // lower-case ("run")
  std::string original;            // the instruction as written (continuations joined)
  std::vector<std::string> flags;  // "--name=value" words, quotes processed
  std::string args;                // everything after the keyword and flags
  Location at;                     // of the keyword
  int end_line = 0;                // the last physical line, heredoc bodies included
  std::vector<Heredoc> heredocs;
};

struct ParseResult {
  Directives directives;
  std::vector<Node> nodes;
  std::vector<Warning> warnings;
};

Result<ParseResult> Parse(std::string_view text, const std::string& file);

// Whether a keyword may carry heredocs (run, copy, add).
bool AllowsHeredoc(std::string_view keyword);

// Finds the heredoc words of one logical line (`<<EOF`, `<<-"EOF"`, `3<<EOF`) in order.
std::vector<Heredoc> HeredocWords(std::string_view line, char escape);

// Splits leading --flag words off `args` (quotes honoured, a bare "--" ends them). Returns the
// remaining text.
Result<std::string> SplitFlags(std::string_view args, char escape, std::vector<std::string>* flags);

}  // namespace slipway::dockerfile

#endif  // SLIPWAY_DOCKERFILE_PARSER_H_
