#include "dockerfile/shell_lex.h"

#include <cerrno>

namespace slipway::dockerfile {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpecial(char c) {
  return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' ||
         c == '0';
}

Error LexError(std::string message) { return Error(std::move(message)); }

// Glob match of `pattern` (with `*`, `?`, escapes) against all of `s`.
bool GlobMatch(std::string_view pattern, std::string_view s, char escape) {
  std::size_t p = 0, i = 0, star_p = std::string_view::npos, star_i = 0;
  while (i < s.size()) {
    if (p < pattern.size()) {
      char c = pattern[p];
      if (c == '*') {
        star_p = p++;
        star_i = i;
        continue;
      }
      if (c == '?') {
        ++p;
        ++i;
        continue;
      }
      if (c == escape && p + 1 < pattern.size()) {
        if (pattern[p + 1] == s[i]) {
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
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    i = ++star_i;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Removes the shortest/longest prefix/suffix of `value` matching `pattern`.
std::string TrimMatch(const std::string& value, const std::string& pattern, bool suffix,
                      bool longest, char escape) {
  const std::size_t n = value.size();
  if (!suffix) {
    for (std::size_t k = 0; k <= n; ++k) {
      std::size_t len = longest ? n - k : k;
      if (GlobMatch(pattern, std::string_view(value).substr(0, len), escape))
        return value.substr(len);
    }
  } else {
    for (std::size_t k = 0; k <= n; ++k) {
      std::size_t len = longest ? n - k : k;
      if (GlobMatch(pattern, std::string_view(value).substr(n - len), escape)) {
        return value.substr(0, n - len);
      }
    }
  }
  return value;
}

// ${v/pat/rep} and ${v//pat/rep}: replaces the first (or every) longest match, scanning left to
// right.
std::string Replace(const std::string& value, const std::string& pattern, const std::string& rep,
                    bool all, char escape) {
  std::string out;
  std::size_t i = 0;
  bool done = false;
  while (i < value.size()) {
    std::size_t match_len = std::string::npos;
    if (!done) {
      for (std::size_t len = value.size() - i; len > 0; --len) {
        if (GlobMatch(pattern, std::string_view(value).substr(i, len), escape)) {
          match_len = len;
          break;
        }
      }
    }
    if (match_len != std::string::npos) {
      out += rep;
      i += match_len;
      if (!all) done = true;
    } else {
      out += value[i++];
    }
  }
  return out;
}

}  // namespace

// One pass over one input.
class LexRun {
 public:
  LexRun(const ShellLex& lex, const Env& env, std::string_view in)
      : lex_(lex), env_(env), in_(in) {}

  Result<std::vector<std::string>> Words(bool split) {
    split_ = split;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (split_ && IsSpace(c)) {
        ++pos_;
        EndWord();
        continue;
      }
      SLIPWAY_RETURN_IF_ERROR(Step(cur_, /*quoted=*/false, 0));
    }
    EndWord();
    if (!split_ && words_.empty()) words_.push_back("");
    return std::move(words_);
  }

 private:
  void EndWord() {
    if (in_word_) words_.push_back(std::move(cur_));
    cur_.clear();
    in_word_ = false;
  }

  // Processes one unquoted construct at pos_ into `out`.
  Result<void> Step(std::string& out, bool nested, int depth) {
    const char c = in_[pos_];
    const char esc = lex_.escape_;
    if (c == '\'') {
      SLIPWAY_RETURN_IF_ERROR(SingleQuote(out));
    } else if (c == '"') {
      SLIPWAY_RETURN_IF_ERROR(DoubleQuote(out, depth));
    } else if (c == esc) {
      ++pos_;
      if (pos_ < in_.size()) {
        if (lex_.raw_) out += esc;
        out += in_[pos_++];
      }
    } else if (c == '$') {
      std::string value;
      bool expanded = false;
      SLIPWAY_RETURN_IF_ERROR(Dollar(value, depth, &expanded));
      if (split_ && !nested && expanded) {
        for (char v : value) {
          if (IsSpace(v)) {
            EndWord();
          } else {
            cur_ += v;
            in_word_ = true;
          }
        }
        return Ok{};
      }
      out += value;
    } else {
      out += c;
      ++pos_;
    }
    if (!nested) in_word_ = true;
    return Ok{};
  }

  Result<void> SingleQuote(std::string& out) {
    const std::size_t start = pos_++;
    std::size_t end = in_.find('\'', pos_);
    if (end == std::string_view::npos) {
      return LexError("unexpected end of statement while looking for matching single-quote");
    }
    if (lex_.raw_) {
      out.append(in_.substr(start, end + 1 - start));
    } else {
      out.append(in_.substr(pos_, end - pos_));
    }
    pos_ = end + 1;
    in_word_ = true;
    return Ok{};
  }

  Result<void> DoubleQuote(std::string& out, int depth) {
    const char esc = lex_.escape_;
    if (lex_.raw_) out += '"';
    ++pos_;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c == '"') {
        if (lex_.raw_) out += '"';
        ++pos_;
        in_word_ = true;
        return Ok{};
      }
      if (c == esc && pos_ + 1 < in_.size()) {
        char n = in_[pos_ + 1];
        if (n == '"' || n == '$' || n == esc) {
          if (lex_.raw_) out += esc;
          out += n;
          pos_ += 2;
          continue;
        }
        out += c;
        ++pos_;
        continue;
      }
      if (c == '$') {
        std::string value;
        bool expanded = false;
        SLIPWAY_RETURN_IF_ERROR(Dollar(value, depth, &expanded));
        out += value;
        continue;
      }
      out += c;
      ++pos_;
    }
    return LexError("unexpected end of statement while looking for matching double-quote");
  }

  // `record`: a plain reference ($v, ${v}) to an unset variable is worth a warning; one with a
  // modifier (${v:-default}) handles the unset case itself.
  const std::string* Lookup(const std::string& name, bool record = true) {
    auto it = env_.find(name);
    if (it == env_.end()) {
      if (record) lex_.unset_.insert(name);
      return nullptr;
    }
    return &it->second;
  }

  // A nested word of a ${...} modifier, up to an unquoted character of `stops` (consumed).
  Result<std::string> Until(std::string_view stops, int depth, char* stopped, bool raw_escapes) {
    std::string out;
    const char esc = lex_.escape_;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (stops.find(c) != std::string_view::npos) {
        *stopped = c;
        ++pos_;
        return out;
      }
      if (raw_escapes && c == esc && pos_ + 1 < in_.size()) {
        // Keep escapes for the pattern matcher (`\*` is a literal star).
        out += c;
        out += in_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      SLIPWAY_RETURN_IF_ERROR(Step(out, /*nested=*/true, depth + 1));
    }
    return LexError("syntax error: missing '}'");
  }

  // At '$'. Sets *expanded when a variable (not a literal '$') was processed.
  Result<void> Dollar(std::string& out, int depth, bool* expanded) {
    if (depth > ShellLex::kMaxDepth) return LexError("substitutions nested too deeply");
    ++pos_;  // the '$'
    if (pos_ >= in_.size()) {
      out += '$';
      return Ok{};
    }
    char c = in_[pos_];
    if (c == '{') {
      *expanded = true;
      return Braced(out, depth);
    }
    std::string name;
    if (IsNameStart(c)) {
      while (pos_ < in_.size() && IsNameChar(in_[pos_])) name += in_[pos_++];
    } else if (IsDigit(c) || IsSpecial(c)) {
      ++pos_;  // positional or special parameter: always empty here
      *expanded = true;
      return Ok{};
    } else {
      out += '$';
      return Ok{};
    }
    *expanded = true;
    const std::string* v = Lookup(name);
    if (v) {
      out += *v;
    } else if (lex_.skip_unset_) {
      out += "$" + name;
    }
    return Ok{};
  }

  Result<void> Braced(std::string& out, int depth) {
    const std::size_t start = pos_ - 1;  // at '$'
    ++pos_;                              // '{'
    if (pos_ >= in_.size()) return LexError("syntax error: missing '}'");
    std::string name;
    char c = in_[pos_];
    if (IsNameStart(c)) {
      while (pos_ < in_.size() && IsNameChar(in_[pos_])) name += in_[pos_++];
    } else if (IsDigit(c)) {
      while (pos_ < in_.size() && IsDigit(in_[pos_])) name += in_[pos_++];
    } else if (IsSpecial(c) && c != '#') {
      name += in_[pos_++];
    } else {
      return LexError("bad substitution");
    }
    if (pos_ >= in_.size()) return LexError("syntax error: missing '}'");
    c = in_[pos_++];
    const std::string* v = Lookup(name, /*record=*/c == '}');
    const bool set = v != nullptr;
    const bool empty = !set || v->empty();
    auto keep_raw = [&]() { out.append(in_.substr(start, pos_ - start)); };
    char stopped = 0;
    switch (c) {
      case '}':
        if (set) {
          out += *v;
        } else if (lex_.skip_unset_) {
          keep_raw();
        }
        return Ok{};
      case ':': {
        if (pos_ >= in_.size()) return LexError("syntax error: missing '}'");
        char m = in_[pos_++];
        if (m != '-' && m != '+' && m != '?') {
          return LexError(std::string("unsupported modifier (:") + m + ") in substitution");
        }
        SLIPWAY_ASSIGN_OR_RETURN(std::string word, Until("}", depth, &stopped, false));
        if (!set && lex_.skip_unset_) return keep_raw(), Ok{};
        if (m == '-') {
          out += empty ? word : *v;
        } else if (m == '+') {
          out += empty ? "" : word;
        } else if (empty) {
          if (!set && lex_.skip_unset_) return keep_raw(), Ok{};
          return LexError(name + ": " +
                          (word.empty()
                               ? (set ? "is not allowed to be empty" : "is not allowed to be unset")
                               : word));
        } else {
          out += *v;
        }
        return Ok{};
      }
      case '-':
      case '+':
      case '?': {
        SLIPWAY_ASSIGN_OR_RETURN(std::string word, Until("}", depth, &stopped, false));
        if (!set && lex_.skip_unset_) return keep_raw(), Ok{};
        if (c == '-') {
          out += set ? *v : word;
        } else if (c == '+') {
          out += set ? word : "";
        } else if (!set) {
          if (lex_.skip_unset_) return keep_raw(), Ok{};
          return LexError(name + ": " + (word.empty() ? "is not allowed to be unset" : word));
        } else {
          out += *v;
        }
        return Ok{};
      }
      case '#':
      case '%': {
        bool longest = pos_ < in_.size() && in_[pos_] == c;
        if (longest) ++pos_;
        SLIPWAY_ASSIGN_OR_RETURN(std::string pattern, Until("}", depth, &stopped, true));
        if (!set && lex_.skip_unset_) return keep_raw(), Ok{};
        out += TrimMatch(set ? *v : "", pattern, c == '%', longest, lex_.escape_);
        return Ok{};
      }
      case '/': {
        bool all = pos_ < in_.size() && in_[pos_] == '/';
        if (all) ++pos_;
        SLIPWAY_ASSIGN_OR_RETURN(std::string pattern, Until("/}", depth, &stopped, true));
        std::string rep;
        if (stopped == '/') {
          SLIPWAY_ASSIGN_OR_RETURN(rep, Until("}", depth, &stopped, false));
        }
        if (!set && lex_.skip_unset_) return keep_raw(), Ok{};
        out += Replace(set ? *v : "", pattern, rep, all, lex_.escape_);
        return Ok{};
      }
      default:
        return LexError(std::string("unsupported modifier (") + c + ") in substitution");
    }
  }

  const ShellLex& lex_;
  const Env& env_;
  std::string_view in_;
  std::size_t pos_ = 0;
  bool split_ = false;
  std::vector<std::string> words_;
  std::string cur_;
  bool in_word_ = false;
};

Result<std::string> ShellLex::ProcessWord(std::string_view word, const Env& env) const {
  unset_.clear();
  LexRun run(*this, env, word);
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> words, run.Words(false));
  return std::move(words[0]);
}

Result<std::vector<std::string>> ShellLex::ProcessWords(std::string_view text,
                                                        const Env& env) const {
  unset_.clear();
  LexRun run(*this, env, text);
  return run.Words(true);
}

}  // namespace slipway::dockerfile
