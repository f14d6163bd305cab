#include "dockerfile/parser.h"

#include <cerrno>

#include "dockerfile/shell_lex.h"

namespace slipway::dockerfile {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view LTrim(std::string_view s) {
  while (!s.empty() &&
         (IsBlank(s.front()) || s.front() == '\r' || s.front() == '\f' || s.front() == '\v')) {
    s.remove_prefix(1);
  }
  return s;
}

std::string_view RTrim(std::string_view s) {
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// If `line` ends with a continuation (the escape char as its last non-blank character, not itself
// escaped), strips it and returns true.
bool StripContinuation(std::string& line, char escape) {
  std::string_view r = RTrim(line);
  if (r.empty() || r.back() != escape) return false;
  if (r.size() >= 2 && r[r.size() - 2] == escape) return false;
  line.resize(r.size() - 1);
  return true;
}

// A parser directive: "#" blanks key blanks "=" blanks value. Returns false if not one.
bool MatchDirective(std::string_view line, std::string* key, std::string* value) {
  if (line.empty() || line[0] != '#') return false;
  std::string_view s = LTrim(line.substr(1));
  std::size_t k = 0;
  if (k >= s.size() || !std::isalpha(static_cast<unsigned char>(s[k]))) return false;
  while (k < s.size() && std::isalnum(static_cast<unsigned char>(s[k]))) ++k;
  *key = Lower(s.substr(0, k));
  s = LTrim(s.substr(k));
  if (s.empty() || s[0] != '=') return false;
  s = RTrim(LTrim(s.substr(1)));
  if (s.empty()) return false;
  *value = std::string(s);
  return true;
}

// Removes quotes and escapes from a flag word without expanding anything.
std::string Unquote(std::string_view w, char escape) {
  std::string out;
  char quote = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    char c = w[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (quote == '"' && c == escape && i + 1 < w.size() &&
                 (w[i + 1] == '"' || w[i + 1] == escape)) {
        out += w[++i];
      } else {
        out += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == escape && i + 1 < w.size()) {
      out += w[++i];
    } else {
      out += c;
    }
  }
  return out;
}

// check=skip=<Rule1,Rule2|all>;error=<true|false>
Result<void> ParseCheck(const std::string& value, const Location& at, Directives* d) {
  std::size_t i = 0;
  while (i <= value.size()) {
    std::size_t semi = value.find(';', i);
    std::string part(RTrim(LTrim(std::string_view(value).substr(
        i, semi == std::string::npos ? std::string::npos : semi - i))));
    i = semi == std::string::npos ? value.size() + 1 : semi + 1;
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    std::string key = Lower(std::string_view(part).substr(0, eq));
    std::string v = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (key == "skip") {
      std::size_t j = 0;
      while (j <= v.size()) {
        std::size_t comma = v.find(',', j);
        std::string rule(RTrim(LTrim(std::string_view(v).substr(
            j, comma == std::string::npos ? std::string::npos : comma - j))));
        if (!rule.empty()) d->check_skip.push_back(rule);
        j = comma == std::string::npos ? v.size() + 1 : comma + 1;
      }
    } else if (key == "error") {
      if (v != "true" && v != "false") {
        return SyntaxError(at, "check directive: error must be true or false, not \"" + v + "\"");
      }
      d->check_error = v == "true";
    } else {
      return SyntaxError(at, "check directive: unknown option \"" + key + "\"");
    }
  }
  return Ok{};
}

}  // namespace

std::string Location::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

Error SyntaxError(const Location& at, const std::string& message) {
  return Error(at.ToString() + ": " + message);  // no errno: the message says it all
}

std::string Warning::ToString() const {
  // A warning about the whole build (unused build args) has no line.
  const std::string where = at.line > 0 ? at.ToString() : at.file;
  return where + ": " + rule + ": " + message;
}

bool AllowsHeredoc(std::string_view keyword) {
  return keyword == "run" || keyword == "copy" || keyword == "add";
}

std::vector<Heredoc> HeredocWords(std::string_view line, char escape) {
  std::vector<Heredoc> docs;
  ShellLex raw(escape);
  raw.set_raw(true);
  raw.set_skip_unset(true);
  auto words = raw.ProcessWords(line, Env{});
  if (!words.ok()) return docs;
  for (const std::string& w : *words) {
    std::size_t i = 0;
    while (i < w.size() && std::isdigit(static_cast<unsigned char>(w[i]))) ++i;
    if (w.compare(i, 2, "<<") != 0) continue;
    Heredoc d;
    if (i > 0) d.fd = std::stoi(w.substr(0, std::min<std::size_t>(i, 6)));
    i += 2;
    if (i < w.size() && w[i] == '-') {
      d.chomp = true;
      ++i;
    }
    std::string_view rest = LTrim(std::string_view(w).substr(i));
    if (rest.empty() || rest.find('<') != std::string_view::npos) continue;
    d.expand = rest.find_first_of("'\"") == std::string_view::npos;
    d.name = Unquote(rest, escape);
    if (d.name.empty()) continue;
    docs.push_back(std::move(d));
  }
  return docs;
}

Result<std::string> SplitFlags(std::string_view args, char escape,
                               std::vector<std::string>* flags) {
  std::size_t pos = 0;
  auto skip = [&]() {
    while (pos < args.size() && (IsBlank(args[pos]) || args[pos] == '\n')) ++pos;
  };
  skip();
  while (args.compare(pos, 2, "--") == 0) {
    std::size_t start = pos;
    char quote = 0;
    while (pos < args.size()) {
      char c = args[pos];
      if (quote) {
        if (c == quote) quote = 0;
        if (c == escape && quote == '"' && pos + 1 < args.size()) ++pos;
      } else if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == escape && pos + 1 < args.size()) {
        ++pos;
      } else if (IsBlank(c) || c == '\n') {
        break;
      }
      ++pos;
    }
    if (quote)
      return Error("unterminated quote in flag " + std::string(args.substr(start, pos - start)),
                   EINVAL);
    std::string word = Unquote(args.substr(start, pos - start), escape);
    skip();
    if (word == "--") break;
    flags->push_back(std::move(word));
  }
  return std::string(args.substr(pos));
}

Result<ParseResult> Parse(std::string_view text, const std::string& file) {
  ParseResult r;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    std::string_view line =
        text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxLineBytes) {
      return SyntaxError({file, static_cast<int>(lines.size() + 1), 1},
                         "dockerfile line greater than max allowed size of 65535");
    }
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  if (!lines.empty() && lines.back().empty() && !text.empty() && text.back() == '\n')
    lines.pop_back();

  // Parser directives, at the very top only.
  std::size_t i = 0;
  bool seen_syntax = false, seen_escape = false, seen_check = false;
  if (!lines.empty() && lines[0].substr(0, 2) == "#!") i = 1;  // a shebang line is skipped
  for (; i < lines.size(); ++i) {
    std::string key, value;
    if (!MatchDirective(LTrim(lines[i]), &key, &value)) break;
    Location at{file, static_cast<int>(i + 1), 1};
    bool* seen = key == "syntax"   ? &seen_syntax
                 : key == "escape" ? &seen_escape
                 : key == "check"  ? &seen_check
                                   : nullptr;
    if (!seen) break;  // an unknown key ends the directives; the line is a comment
    if (*seen) return SyntaxError(at, "only one " + key + " parser directive can be used");
    *seen = true;
    if (key == "escape") {
      if (value != "\\" && value != "`") {
        return SyntaxError(at, "invalid escape token '" + value + "' does not match ^[\\\\`]$");
      }
      r.directives.escape = value[0];
    } else if (key == "syntax") {
      r.directives.syntax = value.substr(0, value.find_first_of(" \t"));
    } else {
      r.directives.check = value;
      SLIPWAY_RETURN_IF_ERROR(ParseCheck(value, at, &r.directives));
    }
  }
  const char escape = r.directives.escape;

  while (i < lines.size()) {
    std::string_view first = LTrim(lines[i]);
    if (first.empty() || first[0] == '#') {
      ++i;
      continue;
    }
    Node node;
    node.at = {file, static_cast<int>(i + 1), static_cast<int>(first.data() - lines[i].data()) + 1};
    std::string logical(first);
    bool cont = StripContinuation(logical, escape);
    node.end_line = static_cast<int>(i + 1);
    ++i;
    while (cont && i < lines.size()) {
      std::string_view l = lines[i];
      std::string_view t = LTrim(l);
      if (t.empty()) {
        r.warnings.push_back({{file, static_cast<int>(i + 1), 1},
                              "NoEmptyContinuation",
                              "Empty continuation lines will become errors in a future release"});
        ++i;
        continue;
      }
      if (t[0] == '#') {
        ++i;
        continue;
      }
      std::string part(l);
      cont = StripContinuation(part, escape);
      logical += part;
      node.end_line = static_cast<int>(i + 1);
      ++i;
    }
    std::size_t kw_end = 0;
    while (kw_end < logical.size() && !IsBlank(logical[kw_end])) ++kw_end;
    node.keyword = Lower(std::string_view(logical).substr(0, kw_end));
    node.original = logical;
    auto rest = SplitFlags(std::string_view(logical).substr(kw_end), escape, &node.flags);
    if (!rest.ok()) return SyntaxError(node.at, rest.error().message());
    node.args = std::move(rest).value();

    std::string_view inner_kw = node.keyword;
    std::string_view inner_args = node.args;
    if (node.keyword == "onbuild") {
      std::size_t e = 0;
      while (e < inner_args.size() && !IsBlank(inner_args[e])) ++e;
      inner_kw = inner_args.substr(0, e);
    }
    if (AllowsHeredoc(Lower(inner_kw)) && LTrim(inner_args).substr(0, 1) != "[") {
      node.heredocs = HeredocWords(inner_args, escape);
      for (Heredoc& d : node.heredocs) {
        for (;;) {
          if (i >= lines.size()) return SyntaxError(node.at, "unterminated heredoc " + d.name);
          std::string_view l = lines[i++];
          if (d.chomp) {
            while (!l.empty() && l.front() == '\t') l.remove_prefix(1);
          }
          if (l == d.name) break;
          d.content.append(l).append("\n");
        }
        node.end_line = static_cast<int>(i);
      }
    }
    r.nodes.push_back(std::move(node));
  }
  if (r.nodes.empty()) return SyntaxError({file, 1, 1}, "file with no instructions");
  return r;
}

}  // namespace slipway::dockerfile
