#include "dockerfile/instructions.h"

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

namespace slipway::dockerfile {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return std::string(s);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The flags an instruction accepts: name -> kind.
enum class FlagKind { kString, kBool, kList };

struct Flags {
  std::map<std::string, std::string> values;
  std::map<std::string, std::vector<std::string>> lists;
  std::set<std::string> bools;
  bool Has(const std::string& n) const {
    return values.count(n) || lists.count(n) || bools.count(n);
  }
  std::string Get(const std::string& n) const {
    auto it = values.find(n);
    return it == values.end() ? "" : it->second;
  }
};

Location FlagLocation(const Node& node, const std::string& flag) {
  Location at = node.at;
  std::size_t p = node.original.find("--" + flag.substr(0, flag.find('=')));
  if (p != std::string::npos) at.column += static_cast<int>(p);
  return at;
}

Result<Flags> ParseFlags(const Node& node, const std::map<std::string, FlagKind>& allowed) {
  Flags f;
  for (const std::string& raw : node.flags) {
    std::string body = raw.substr(2);
    std::size_t eq = body.find('=');
    std::string name = body.substr(0, eq);
    auto it = allowed.find(name);
    if (it == allowed.end()) {
      return SyntaxError(FlagLocation(node, body), "unknown flag: --" + name);
    }
    const bool has_value = eq != std::string::npos;
    const std::string value = has_value ? body.substr(eq + 1) : "";
    switch (it->second) {
      case FlagKind::kBool:
        if (has_value && value != "true" && value != "false") {
          return SyntaxError(FlagLocation(node, body),
                             "expecting boolean value for flag --" + name + ", not: " + value);
        }
        if (f.bools.count(name) || f.values.count(name)) {
          return SyntaxError(FlagLocation(node, body), "duplicate flag specified: --" + name);
        }
        if (!has_value || value == "true") f.bools.insert(name);
        f.values[name] = has_value ? value : "true";
        break;
      case FlagKind::kString:
        if (!has_value) {
          return SyntaxError(FlagLocation(node, body), "missing a value on flag: --" + name);
        }
        if (f.values.count(name)) {
          return SyntaxError(FlagLocation(node, body), "duplicate flag specified: --" + name);
        }
        f.values[name] = value;
        break;
      case FlagKind::kList:
        if (!has_value) {
          return SyntaxError(FlagLocation(node, body), "missing a value on flag: --" + name);
        }
        f.lists[name].push_back(value);
        break;
    }
  }
  return f;
}

Result<CommandLine> ParseCommand(const Node& node, std::string_view args) {
  CommandLine c;
  auto json = ParseJsonArray(args, &c.exec);
  if (!json.ok()) return SyntaxError(node.at, json.error().message());
  c.exec_form = *json;
  if (!c.exec_form) c.shell = Trim(args);
  return c;
}

// Words of COPY/ADD/VOLUME/EXPOSE: a JSON array, or whitespace-separated words.
Result<std::vector<std::string>> ParseList(const Node& node, std::string_view args) {
  std::vector<std::string> out;
  auto json = ParseJsonArray(args, &out);
  if (!json.ok()) return SyntaxError(node.at, json.error().message());
  if (*json) return out;
  std::string cur;
  for (char c : args) {
    if (IsBlank(c)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

// ENV and LABEL: "k=v k2=v2" or the legacy "k v...".
Result<std::vector<KeyValue>> ParseNameVal(const Node& node, char escape, const char* what) {
  std::vector<std::string> words = SplitWordsKeepQuotes(node.args, escape);
  std::vector<KeyValue> out;
  if (words.empty())
    return SyntaxError(node.at, std::string(what) + " requires at least one argument");
  if (words[0].find('=') == std::string::npos) {
    std::string rest = Trim(node.args);
    std::size_t ws = rest.find_first_of(" \t\n");
    if (ws == std::string::npos) {
      return SyntaxError(node.at, std::string(what) + " must have two arguments");
    }
    std::size_t v = rest.find_first_not_of(" \t\n", ws);
    out.push_back({rest.substr(0, ws), rest.substr(v)});
    return out;
  }
  for (const std::string& w : words) {
    std::size_t eq = w.find('=');
    if (eq == std::string::npos) {
      return SyntaxError(
          node.at, "Syntax error - can't find = in \"" + w + "\". Must be of the form: name=value");
    }
    if (eq == 0) return SyntaxError(node.at, std::string(what) + " names can not be blank");
    out.push_back({w.substr(0, eq), w.substr(eq + 1)});
  }
  return out;
}

bool ValidStageName(const std::string& n) {
  if (n.empty() || !(n[0] >= 'a' && n[0] <= 'z')) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

Result<CopySpec> ParseCopy(const Node& node, bool is_add) {
  std::map<std::string, FlagKind> allowed = {{"chown", FlagKind::kString},
                                             {"chmod", FlagKind::kString},
                                             {"link", FlagKind::kBool},
                                             {"exclude", FlagKind::kList}};
  if (is_add) {
    allowed["checksum"] = FlagKind::kString;
    allowed["keep-git-dir"] = FlagKind::kBool;
    allowed["unpack"] = FlagKind::kBool;
  } else {
    allowed["from"] = FlagKind::kString;
    allowed["parents"] = FlagKind::kBool;
  }
  SLIPWAY_ASSIGN_OR_RETURN(Flags f, ParseFlags(node, allowed));
  CopySpec c;
  c.from = f.Get("from");
  c.chown = f.Get("chown");
  c.chmod = f.Get("chmod");
  c.checksum = f.Get("checksum");
  c.link = f.bools.count("link") > 0;
  c.parents = f.bools.count("parents") > 0;
  c.keep_git_dir = f.bools.count("keep-git-dir") > 0;
  if (f.values.count("unpack")) c.unpack = f.Get("unpack") == "true";
  if (f.lists.count("exclude")) c.excludes = f.lists["exclude"];
  if (f.Has("chmod") && c.chmod.find('$') == std::string::npos && !ValidChmod(c.chmod)) {
    return SyntaxError(FlagLocation(node, "chmod"), "invalid --chmod value \"" + c.chmod +
                                                        "\": expected octal (0755) or symbolic "
                                                        "(u=rwX,go=rX)");
  }
  if (f.Has("from") && c.from.empty()) {
    return SyntaxError(FlagLocation(node, "from"), "--from needs a stage, index or image");
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> words, ParseList(node, node.args));
  const char* name = is_add ? "ADD" : "COPY";
  if (words.size() < 2) {
    return SyntaxError(node.at, std::string(name) + " requires at least two arguments, but got " +
                                    std::to_string(words.size()));
  }
  c.dest = words.back();
  words.pop_back();
  if (!node.heredocs.empty() && c.dest.rfind("<<", 0) == 0) {
    return SyntaxError(node.at, std::string(name) + " destination cannot be a heredoc");
  }
  c.sources = std::move(words);
  return c;
}

Result<Healthcheck> ParseHealthcheck(const Node& node) {
  SLIPWAY_ASSIGN_OR_RETURN(Flags f, ParseFlags(node, {{"interval", FlagKind::kString},
                                                      {"timeout", FlagKind::kString},
                                                      {"start-period", FlagKind::kString},
                                                      {"start-interval", FlagKind::kString},
                                                      {"retries", FlagKind::kString}}));
  Healthcheck h;
  std::string args = Trim(node.args);
  std::size_t ws = args.find_first_of(" \t\n");
  std::string type = Lower(args.substr(0, ws));
  std::string rest = ws == std::string::npos ? "" : Trim(args.substr(ws));
  if (type == "none") {
    if (!rest.empty() || !node.flags.empty()) {
      return SyntaxError(node.at, "HEALTHCHECK NONE takes no arguments");
    }
    h.none = true;
    return h;
  }
  if (type != "cmd") {
    return SyntaxError(node.at,
                       "Unknown type \"" + args.substr(0, ws) + "\" in HEALTHCHECK (try CMD)");
  }
  if (rest.empty()) return SyntaxError(node.at, "Missing command after HEALTHCHECK CMD");
  SLIPWAY_ASSIGN_OR_RETURN(h.command, ParseCommand(node, rest));
  struct D {
    const char* flag;
    std::int64_t* out;
  } durations[] = {{"interval", &h.interval_ns},
                   {"timeout", &h.timeout_ns},
                   {"start-period", &h.start_period_ns},
                   {"start-interval", &h.start_interval_ns}};
  for (const D& d : durations) {
    if (!f.values.count(d.flag)) continue;
    auto v = ParseDuration(f.Get(d.flag));
    if (!v.ok()) {
      return SyntaxError(FlagLocation(node, d.flag),
                         "--" + std::string(d.flag) + ": " + v.error().message());
    }
    if (*v != 0 && *v < 1000000) {
      return SyntaxError(FlagLocation(node, d.flag),
                         "--" + std::string(d.flag) + " cannot be less than 1ms");
    }
    *d.out = *v;
  }
  if (f.values.count("retries")) {
    const std::string r = f.Get("retries");
    char* end = nullptr;
    long v = std::strtol(r.c_str(), &end, 10);
    if (r.empty() || *end != '\0') {
      return SyntaxError(FlagLocation(node, "retries"), "--retries: invalid number \"" + r + "\"");
    }
    if (v < 0) return SyntaxError(FlagLocation(node, "retries"), "--retries cannot be negative");
    h.retries = static_cast<int>(v);
  }
  return h;
}

}  // namespace

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kFrom:
      return "FROM";
    case Kind::kRun:
      return "RUN";
    case Kind::kCmd:
      return "CMD";
    case Kind::kEntrypoint:
      return "ENTRYPOINT";
    case Kind::kShell:
      return "SHELL";
    case Kind::kLabel:
      return "LABEL";
    case Kind::kMaintainer:
      return "MAINTAINER";
    case Kind::kExpose:
      return "EXPOSE";
    case Kind::kEnv:
      return "ENV";
    case Kind::kAdd:
      return "ADD";
    case Kind::kCopy:
      return "COPY";
    case Kind::kVolume:
      return "VOLUME";
    case Kind::kUser:
      return "USER";
    case Kind::kWorkdir:
      return "WORKDIR";
    case Kind::kArg:
      return "ARG";
    case Kind::kOnbuild:
      return "ONBUILD";
    case Kind::kStopsignal:
      return "STOPSIGNAL";
    case Kind::kHealthcheck:
      return "HEALTHCHECK";
  }
  return "?";
}

std::vector<std::string> SplitWordsKeepQuotes(std::string_view text, char escape) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      cur += c;
      if (c == escape && quote == '"' && i + 1 < text.size()) {
        cur += text[++i];
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (IsBlank(c)) {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    cur += c;
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == escape && i + 1 < text.size()) {
      cur += text[++i];
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

Result<bool> ParseJsonArray(std::string_view text, std::vector<std::string>* out) {
  std::size_t s = 0;
  while (s < text.size() && IsBlank(text[s])) ++s;
  if (s >= text.size() || text[s] != '[') return false;
  nlohmann::json j = nlohmann::json::parse(text.substr(s), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return false;
  out->clear();
  for (const auto& e : j) {
    if (!e.is_string()) return Error("arrays must be comprised of strings only", EINVAL);
    out->push_back(e.get<std::string>());
  }
  return true;
}

Result<std::int64_t> ParseDuration(const std::string& text) {
  if (text.empty()) return Error("invalid duration \"\"", EINVAL);
  if (text == "0") return std::int64_t{0};
  std::size_t i = 0;
  long double total = 0;
  bool any = false;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (start == i) return Error("invalid duration \"" + text + "\"", EINVAL);
    long double n = std::strtold(text.substr(start, i - start).c_str(), nullptr);
    std::size_t us = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(us, i - us);
    long double mult;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us" || unit == "µs")
      mult = 1e3;
    else if (unit == "ms")
      mult = 1e6;
    else if (unit == "s")
      mult = 1e9;
    else if (unit == "m")
      mult = 60e9;
    else if (unit == "h")
      mult = 3600e9;
    else
      return Error("invalid duration \"" + text + "\": unknown unit \"" + unit + "\"", EINVAL);
    total += n * mult;
    any = true;
  }
  if (!any || total > 9.2e18L) return Error("invalid duration \"" + text + "\"", EINVAL);
  return static_cast<std::int64_t>(total);
}

std::string Mount::ToString() const {
  std::string s = "type=" + type;
  if (!target.empty()) s += ",target=" + target;
  if (!source.empty()) s += ",source=" + source;
  if (!from.empty()) s += ",from=" + from;
  if (!id.empty()) s += ",id=" + id;
  if (type == "cache") s += ",sharing=" + sharing;
  if (mode) {
    char octal[16];
    std::snprintf(octal, sizeof(octal), "%04o", *mode);
    s += ",mode=" + std::string(octal);
  }
  if (uid) s += ",uid=" + std::to_string(*uid);
  if (gid) s += ",gid=" + std::to_string(*gid);
  if (size) s += ",size=" + std::to_string(*size);
  if (!env.empty()) s += ",env=" + env;
  if (type == "bind" || type == "cache" || type == "tmpfs") s += readonly ? ",ro" : ",rw";
  if (required) s += ",required";
  return s;
}

Result<Mount> ParseMount(const std::string& value) {
  // CSV fields; a field may be quoted with "..." ("" for a literal quote).
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (quoted) {
      if (c == '"' && i + 1 < value.size() && value[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (quoted) return Error("--mount " + value + ": unterminated quote", EINVAL);
  fields.push_back(std::move(cur));

  Mount m;
  // The type first: it decides the defaults.
  for (const std::string& f : fields) {
    if (f.rfind("type=", 0) == 0) m.type = Lower(f.substr(5));
  }
  static const std::set<std::string> kTypes = {"bind", "cache", "tmpfs", "secret", "ssh"};
  if (!kTypes.count(m.type)) return Error("unsupported mount type \"" + m.type + "\"", EINVAL);
  m.readonly = m.type == "bind";
  if (m.type == "secret") m.mode = 0400;
  if (m.type == "ssh") m.mode = 0600;
  auto number = [&](const std::string& key, const std::string& v, int base,
                    std::uint64_t max) -> Result<std::uint64_t> {
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(v.c_str(), &end, base);
    if (v.empty() || *end != '\0' || errno != 0 || n > max || v[0] == '-') {
      return Error("--mount: invalid " + key + " \"" + v + "\"", EINVAL);
    }
    return static_cast<std::uint64_t>(n);
  };
  auto boolean = [&](const std::string& key, const std::string& v, bool has) -> Result<bool> {
    if (!has || v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    return Error("--mount: invalid boolean for " + key + ": \"" + v + "\"", EINVAL);
  };
  for (const std::string& f : fields) {
    if (f.empty()) continue;
    std::size_t eq = f.find('=');
    const bool has = eq != std::string::npos;
    const std::string key = Lower(f.substr(0, eq));
    const std::string v = has ? f.substr(eq + 1) : "";
    if (key == "type") continue;
    if (key == "target" || key == "dst" || key == "destination") {
      m.target = v;
    } else if ((key == "source" || key == "src") && m.type != "tmpfs") {
      m.source = v;
    } else if (key == "from" && (m.type == "bind" || m.type == "cache")) {
      m.from = v;
    } else if (key == "id" && (m.type == "cache" || m.type == "secret" || m.type == "ssh")) {
      m.id = v;
    } else if (key == "sharing" && m.type == "cache") {
      if (v != "shared" && v != "private" && v != "locked") {
        return Error("--mount: unsupported sharing value \"" + v + "\"", EINVAL);
      }
      m.sharing = v;
    } else if ((key == "ro" || key == "readonly") && m.type != "secret" && m.type != "ssh") {
      SLIPWAY_ASSIGN_OR_RETURN(m.readonly, boolean(key, v, has));
    } else if ((key == "rw" || key == "readwrite") && m.type != "secret" && m.type != "ssh") {
      SLIPWAY_ASSIGN_OR_RETURN(bool rw, boolean(key, v, has));
      m.readonly = !rw;
    } else if (key == "mode" && m.type != "bind" && m.type != "tmpfs") {
      SLIPWAY_ASSIGN_OR_RETURN(std::uint64_t n, number(key, v, 8, 07777));
      m.mode = static_cast<std::uint32_t>(n);
    } else if ((key == "uid" || key == "gid") && m.type != "bind" && m.type != "tmpfs") {
      SLIPWAY_ASSIGN_OR_RETURN(std::uint64_t n, number(key, v, 10, 2147483647));
      (key == "uid" ? m.uid : m.gid) = static_cast<std::uint32_t>(n);
    } else if (key == "size" && m.type == "tmpfs") {
      SLIPWAY_ASSIGN_OR_RETURN(std::uint64_t n, number(key, v, 10, ~0ull));
      m.size = n;
    } else if (key == "env" && m.type == "secret") {
      m.env = v;
    } else if (key == "required" && (m.type == "secret" || m.type == "ssh")) {
      SLIPWAY_ASSIGN_OR_RETURN(m.required, boolean(key, v, has));
    } else {
      return Error("--mount: unexpected key \"" + key + "\" for type=" + m.type, EINVAL);
    }
  }
  if (m.type == "bind" || m.type == "cache" || m.type == "tmpfs") {
    if (m.target.empty()) return Error("--mount: type=" + m.type + " needs a target", EINVAL);
  }
  if (m.type == "cache" && m.id.empty()) m.id = m.target;
  if (m.type == "secret") {
    if (m.id.empty() && m.target.empty()) {
      return Error("--mount: type=secret needs an id or a target", EINVAL);
    }
    if (m.id.empty()) m.id = m.target.substr(m.target.rfind('/') + 1);
    if (m.target.empty() && m.env.empty()) m.target = "/run/secrets/" + m.id;
  }
  if (m.type == "ssh") {
    if (m.id.empty()) m.id = "default";
    if (m.target.empty()) m.target = "/run/buildkit/ssh_agent.0";
  }
  return m;  // a relative target is resolved against the working directory when run
}

bool ValidChmod(const std::string& m) {
  if (m.empty()) return false;
  if (std::all_of(m.begin(), m.end(), [](char c) { return c >= '0' && c <= '7'; })) {
    return m.size() <= 4;
  }
  std::size_t i = 0;
  while (i < m.size()) {
    while (i < m.size() && std::string("ugoa").find(m[i]) != std::string::npos) ++i;
    if (i >= m.size() || std::string("+-=").find(m[i]) == std::string::npos) return false;
    while (i < m.size() && std::string("+-=").find(m[i]) != std::string::npos) {
      ++i;
      while (i < m.size() && std::string("rwxXst").find(m[i]) != std::string::npos) ++i;
    }
    if (i < m.size()) {
      if (m[i] != ',') return false;
      ++i;
      if (i == m.size()) return false;
    }
  }
  return true;
}

RunHeredoc ClassifyRunHeredoc(const Instruction& run) {
  RunHeredoc r;
  if (run.kind != Kind::kRun || run.heredocs.empty() || run.command.exec_form) return r;
  const Heredoc& first = run.heredocs.front();
  const std::string cmd = Trim(run.command.shell);
  const bool alone = run.heredocs.size() == 1 && cmd.rfind("<<", 0) == 0 &&
                     cmd.find_first_of(" \t") == std::string::npos;
  if (alone) {
    r.kind =
        first.content.rfind("#!", 0) == 0 ? RunHeredocKind::kScript : RunHeredocKind::kShellBody;
    r.text = first.content;
    return r;
  }
  r.kind = RunHeredocKind::kShellText;
  r.text = cmd;
  for (const Heredoc& h : run.heredocs) r.text += "\n" + h.content + h.name;
  return r;
}

Result<Instruction> ParseInstruction(const Node& node, char escape) {
  Instruction ins;
  ins.at = node.at;
  ins.original = node.original;
  ins.heredocs = node.heredocs;
  const std::string& k = node.keyword;
  auto no_flags = [&]() -> Result<void> {
    SLIPWAY_RETURN_IF_ERROR(ParseFlags(node, {}));
    return Ok{};
  };
  auto words = [&]() { return SplitWordsKeepQuotes(node.args, escape); };

  if (k == "from") {
    ins.kind = Kind::kFrom;
    SLIPWAY_ASSIGN_OR_RETURN(Flags f, ParseFlags(node, {{"platform", FlagKind::kString}}));
    ins.platform = f.Get("platform");
    std::vector<std::string> w = words();
    if (w.size() != 1 && !(w.size() == 3 && Lower(w[1]) == "as")) {
      return SyntaxError(node.at, "FROM requires either one or three arguments");
    }
    ins.image = w[0];
    if (w.size() == 3) {
      ins.stage_name = Lower(w[2]);
      if (!ValidStageName(ins.stage_name)) {
        return SyntaxError(node.at, "invalid name for build stage: \"" + w[2] +
                                        "\", name can't start with a number or contain symbols");
      }
    }
  } else if (k == "run") {
    ins.kind = Kind::kRun;
    SLIPWAY_ASSIGN_OR_RETURN(Flags f, ParseFlags(node, {{"mount", FlagKind::kList},
                                                        {"network", FlagKind::kString},
                                                        {"security", FlagKind::kString}}));
    for (const std::string& m : f.lists["mount"]) {
      auto mount = ParseMount(m);
      if (!mount.ok()) return SyntaxError(FlagLocation(node, "mount"), mount.error().message());
      ins.mounts.push_back(*mount);
    }
    ins.network = f.Get("network");
    if (f.Has("network") && ins.network != "default" && ins.network != "none" &&
        ins.network != "host") {
      return SyntaxError(FlagLocation(node, "network"),
                         "unsupported network mode \"" + ins.network + "\" (default, none, host)");
    }
    ins.security = f.Get("security");
    if (f.Has("security") && ins.security != "sandbox" && ins.security != "insecure") {
      return SyntaxError(FlagLocation(node, "security"),
                         "unsupported security mode \"" + ins.security + "\" (sandbox, insecure)");
    }
    SLIPWAY_ASSIGN_OR_RETURN(ins.command, ParseCommand(node, node.args));
    if (!ins.command.exec_form && ins.command.shell.empty() && ins.heredocs.empty()) {
      return SyntaxError(node.at, "RUN requires at least one argument");
    }
  } else if (k == "cmd" || k == "entrypoint") {
    ins.kind = k == "cmd" ? Kind::kCmd : Kind::kEntrypoint;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    SLIPWAY_ASSIGN_OR_RETURN(ins.command, ParseCommand(node, node.args));
  } else if (k == "shell") {
    ins.kind = Kind::kShell;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    auto json = ParseJsonArray(node.args, &ins.words);
    if (!json.ok()) return SyntaxError(node.at, json.error().message());
    if (!*json) return SyntaxError(node.at, "SHELL requires the arguments to be in JSON form");
    if (ins.words.empty()) return SyntaxError(node.at, "SHELL requires at least one argument");
  } else if (k == "label" || k == "env") {
    ins.kind = k == "env" ? Kind::kEnv : Kind::kLabel;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    SLIPWAY_ASSIGN_OR_RETURN(ins.pairs, ParseNameVal(node, escape, k == "env" ? "ENV" : "LABEL"));
  } else if (k == "maintainer") {
    ins.kind = Kind::kMaintainer;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    ins.value = Trim(node.args);
    if (ins.value.empty()) return SyntaxError(node.at, "MAINTAINER requires exactly one argument");
  } else if (k == "expose" || k == "volume") {
    ins.kind = k == "expose" ? Kind::kExpose : Kind::kVolume;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    SLIPWAY_ASSIGN_OR_RETURN(ins.words, ParseList(node, node.args));
    if (ins.words.empty()) {
      return SyntaxError(node.at,
                         std::string(KindName(ins.kind)) + " requires at least one argument");
    }
    for (const std::string& w : ins.words) {
      if (Trim(w).empty())
        return SyntaxError(node.at, "VOLUME specified can not be an empty string");
    }
  } else if (k == "add" || k == "copy") {
    ins.kind = k == "add" ? Kind::kAdd : Kind::kCopy;
    SLIPWAY_ASSIGN_OR_RETURN(ins.copy, ParseCopy(node, k == "add"));
  } else if (k == "user" || k == "workdir" || k == "stopsignal") {
    ins.kind = k == "user" ? Kind::kUser : k == "workdir" ? Kind::kWorkdir : Kind::kStopsignal;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    std::vector<std::string> w = words();
    // WORKDIR takes the whole rest of the line (a path may contain blanks); the others one word.
    if (w.empty() || (w.size() != 1 && k != "workdir")) {
      return SyntaxError(node.at,
                         std::string(KindName(ins.kind)) + " requires exactly one argument");
    }
    ins.value = k == "workdir" ? Trim(node.args) : w[0];
  } else if (k == "arg") {
    ins.kind = Kind::kArg;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    std::vector<std::string> w = words();
    if (w.empty()) return SyntaxError(node.at, "ARG requires at least one argument");
    for (const std::string& word : w) {
      std::size_t eq = word.find('=');
      if (eq == 0) return SyntaxError(node.at, "ARG names can not be blank");
      ArgDecl a;
      a.name = word.substr(0, eq);
      if (eq != std::string::npos) a.default_value = word.substr(eq + 1);
      ins.args.push_back(std::move(a));
    }
  } else if (k == "onbuild") {
    ins.kind = Kind::kOnbuild;
    SLIPWAY_RETURN_IF_ERROR(no_flags());
    ins.value = Trim(node.args);
    if (ins.value.empty()) return SyntaxError(node.at, "ONBUILD requires at least one argument");
    Node inner = node;
    std::size_t ws = ins.value.find_first_of(" \t\n");
    inner.keyword = Lower(ins.value.substr(0, ws));
    if (inner.keyword == "onbuild") {
      return SyntaxError(node.at, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    }
    if (inner.keyword == "from" || inner.keyword == "maintainer") {
      return SyntaxError(node.at, Lower(inner.keyword) == "from"
                                      ? "FROM isn't allowed as an ONBUILD trigger"
                                      : "MAINTAINER isn't allowed as an ONBUILD trigger");
    }
    inner.original = ins.value;
    inner.flags.clear();
    auto rest =
        SplitFlags(ws == std::string::npos ? "" : ins.value.substr(ws), escape, &inner.flags);
    if (!rest.ok()) return SyntaxError(node.at, rest.error().message());
    inner.args = *rest;
    SLIPWAY_ASSIGN_OR_RETURN(Instruction trigger, ParseInstruction(inner, escape));
    ins.trigger = std::make_shared<const Instruction>(std::move(trigger));
  } else if (k == "healthcheck") {
    ins.kind = Kind::kHealthcheck;
    SLIPWAY_ASSIGN_OR_RETURN(ins.health, ParseHealthcheck(node));
  } else {
    std::string word = node.original.substr(0, node.original.find_first_of(" \t"));
    return SyntaxError(node.at, "unknown instruction: " + word);
  }
  if (!ins.heredocs.empty() && ins.kind != Kind::kRun && ins.kind != Kind::kCopy &&
      ins.kind != Kind::kAdd && ins.kind != Kind::kOnbuild) {
    return SyntaxError(node.at, std::string(KindName(ins.kind)) + " does not support heredocs");
  }
  return ins;
}

}  // namespace slipway::dockerfile
