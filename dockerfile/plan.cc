#include "dockerfile/plan.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <functional>

namespace slipway::dockerfile {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void SplitPlatform(const std::string& p, std::string* os, std::string* arch, std::string* variant) {
  std::size_t a = p.find('/');
  *os = p.substr(0, a);
  if (a == std::string::npos) return;
  std::size_t b = p.find('/', a + 1);
  *arch = p.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  if (b != std::string::npos) *variant = p.substr(b + 1);
}

Env PlatformArgs(const BuildOptions& o) {
  Env e;
  std::string os, arch, variant;
  SplitPlatform(o.target_platform, &os, &arch, &variant);
  e["TARGETPLATFORM"] = o.target_platform;
  e["TARGETOS"] = os;
  e["TARGETARCH"] = arch;
  e["TARGETVARIANT"] = variant;
  os = arch = variant = "";
  SplitPlatform(o.build_platform, &os, &arch, &variant);
  e["BUILDPLATFORM"] = o.build_platform;
  e["BUILDOS"] = os;
  e["BUILDARCH"] = arch;
  e["BUILDVARIANT"] = variant;
  return e;
}

bool ValidPort(const std::string& p) {
  std::string s = p;
  std::size_t slash = s.find('/');
  if (slash != std::string::npos) {
    std::string proto = Lower(s.substr(slash + 1));
    if (proto != "tcp" && proto != "udp" && proto != "sctp") return false;
    s = s.substr(0, slash);
  }
  std::size_t dash = s.find('-');
  auto port = [](const std::string& n) {
    return AllDigits(n) && n.size() <= 5 && std::stol(n) <= 65535;
  };
  if (dash == std::string::npos) return port(s);
  return port(s.substr(0, dash)) && port(s.substr(dash + 1));
}

bool ValidSignal(const std::string& s) {
  if (AllDigits(s)) return s.size() <= 2 && std::stoi(s) >= 1 && std::stoi(s) <= 64;
  std::string n = s;
  for (char& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (n.rfind("SIG", 0) != 0) n = "SIG" + n;
  static const char* const kNames[] = {
      "SIGABRT", "SIGALRM",   "SIGBUS",   "SIGCHLD", "SIGCONT",   "SIGFPE",   "SIGHUP",
      "SIGILL",  "SIGINT",    "SIGIO",    "SIGIOT",  "SIGKILL",   "SIGPIPE",  "SIGPOLL",
      "SIGPROF", "SIGPWR",    "SIGQUIT",  "SIGSEGV", "SIGSTKFLT", "SIGSTOP",  "SIGSYS",
      "SIGTERM", "SIGTRAP",   "SIGTSTP",  "SIGTTIN", "SIGTTOU",   "SIGURG",   "SIGUSR1",
      "SIGUSR2", "SIGVTALRM", "SIGWINCH", "SIGXCPU", "SIGXFSZ",   "SIGRTMIN", "SIGRTMAX"};
  for (const char* k : kNames) {
    if (n == k) return true;
  }
  for (const char* rt : {"SIGRTMIN+", "SIGRTMAX-"}) {
    if (n.rfind(rt, 0) == 0 && AllDigits(n.substr(9))) return std::stoi(n.substr(9)) <= 30;
  }
  return false;
}

class Planner {
 public:
  Planner(const ParseResult& parsed, const BuildOptions& opts)
      : parsed_(parsed), opts_(opts), lex_(parsed.directives.escape) {
    plan_.directives = parsed.directives;
    plan_.warnings = parsed.warnings;
    automatic_ = PlatformArgs(opts);
  }

  Result<Plan> Run() {
    // How many instructions each stage will hold, so each stage's vector is sized once.
    has_preamble_ = parsed_.nodes.front().keyword != "from";
    for (const Node& node : parsed_.nodes) {
      if (node.keyword == "from" || stage_sizes_.empty()) stage_sizes_.push_back(0);
      ++stage_sizes_.back();
    }
    for (const Node& node : parsed_.nodes) {
      SLIPWAY_ASSIGN_OR_RETURN(Instruction ins, ParseInstruction(node, parsed_.directives.escape));
      if (ins.kind == Kind::kFrom) {
        SLIPWAY_RETURN_IF_ERROR(From(std::move(ins)));
      } else if (plan_.stages.empty()) {
        if (ins.kind != Kind::kArg) {
          return SyntaxError(ins.at, std::string(KindName(ins.kind)) +
                                         " before the first FROM: only ARG may come before it");
        }
        SLIPWAY_RETURN_IF_ERROR(GlobalArg(ins));
      } else {
        SLIPWAY_RETURN_IF_ERROR(InStage(std::move(ins)));
      }
    }
    if (plan_.stages.empty()) {
      return SyntaxError({parsed_.nodes.front().at.file, 1, 1},
                         "the Dockerfile contains no stages to build (no FROM)");
    }
    SLIPWAY_RETURN_IF_ERROR(Finish());
    return std::move(plan_);
  }

 private:
  Result<std::string> Expand(const std::string& word, const Env& env, const Location& at) {
    auto r = lex_.ProcessWord(word, env);
    if (!r.ok()) return SyntaxError(at, r.error().message());
    for (const std::string& name : lex_.unset_names()) {
      plan_.warnings.push_back({at, "UndefinedVar", "Usage of undefined variable '$" + name + "'"});
    }
    return std::move(r).value();
  }

  Result<std::vector<std::string>> ExpandWords(const std::string& text, const Env& env,
                                               const Location& at) {
    auto r = lex_.ProcessWords(text, env);
    if (!r.ok()) return SyntaxError(at, r.error().message());
    return std::move(r).value();
  }

  Env GlobalScope() const {
    Env e = automatic_;
    for (const auto& [k, v] : plan_.global_args) e[k] = v;
    return e;
  }

  // What an instruction of the current stage sees: its ARGs, proxy build args, then ENV on top.
  // Rebuilt only after an ARG, ENV or FROM changed it.
  const Env& Visible() {
    if (!visible_dirty_) return visible_;
    visible_dirty_ = false;
    const Stage& s = plan_.stages.back();
    Env& e = visible_;
    e.clear();
    for (const auto& [k, v] : opts_.build_args) {
      if (IsProxyArg(k)) e[k] = v;
    }
    for (const auto& [k, v] : image_env_) e[k] = v;
    for (const auto& [k, v] : s.args) e[k] = v;
    for (const auto& [k, v] : s.env) e[k] = v;
    return e;
  }

  Result<void> GlobalArg(const Instruction& ins) {
    for (const ArgDecl& a : ins.args) {
      declared_.insert(a.name);
      auto given = opts_.build_args.find(a.name);
      if (given != opts_.build_args.end()) {
        plan_.global_args[a.name] = given->second;
      } else if (a.default_value) {
        SLIPWAY_ASSIGN_OR_RETURN(plan_.global_args[a.name],
                                 Expand(*a.default_value, GlobalScope(), ins.at));
      }
    }
    return Ok{};
  }

  Result<void> From(Instruction ins) {
    const Env scope = GlobalScope();
    Stage s;
    s.index = static_cast<int>(plan_.stages.size());
    s.at = ins.at;
    s.name = ins.stage_name;
    SLIPWAY_ASSIGN_OR_RETURN(s.base, Expand(ins.image, scope, ins.at));
    if (s.base.empty()) {
      return SyntaxError(ins.at, "base name (" + ins.image + ") should not be blank");
    }
    SLIPWAY_ASSIGN_OR_RETURN(s.platform, Expand(ins.platform, scope, ins.at));
    for (const Stage& other : plan_.stages) {
      if (!s.name.empty() && other.name == s.name) {
        return SyntaxError(ins.at, "duplicate stage name \"" + s.name + "\" (first at line " +
                                       std::to_string(other.at.line) + ")");
      }
    }
    const std::string lower = Lower(s.base);
    for (const Stage& other : plan_.stages) {
      if (!other.name.empty() && other.name == lower) s.base_stage = other.index;
    }
    image_env_.clear();
    if (s.base_stage >= 0) {
      const Stage& parent = plan_.stages[s.base_stage];
      s.args = parent.args;
      s.env = parent.env;
    } else if (lower == "scratch") {
      s.scratch = true;
    } else if (opts_.image_env) {
      image_env_ = opts_.image_env(s.base);
    }
    ins.image = s.base;
    ins.platform = s.platform;
    const std::size_t sized =
        static_cast<std::size_t>(plan_.stages.size()) + (has_preamble_ ? 1 : 0);
    if (sized < stage_sizes_.size()) s.instructions.reserve(stage_sizes_[sized]);
    const Location from_at = ins.at;
    s.instructions.push_back(std::move(ins));
    plan_.stages.push_back(std::move(s));
    visible_dirty_ = true;
    return Triggers(plan_.stages.back(), from_at);
  }

  // The base's ONBUILD triggers, run as if written right after FROM.
  Result<void> Triggers(const Stage& s, const Location& from_at) {
    std::vector<Instruction> triggers;
    if (s.base_stage >= 0) {
      const Stage& parent = plan_.stages[s.base_stage];
      for (const Instruction& i : parent.instructions) {
        if (i.kind == Kind::kOnbuild && i.trigger && i.onbuild_of.empty()) {
          triggers.push_back(*i.trigger);
          triggers.back().onbuild_of = "ONBUILD of stage " + (parent.name.empty()
                                                                  ? std::to_string(parent.index)
                                                                  : parent.name);
        }
      }
    } else if (!s.scratch && opts_.image_onbuild) {
      for (const std::string& text : opts_.image_onbuild(s.base)) {
        const std::string origin = "ONBUILD of image " + s.base;
        auto parsed = Parse(text, from_at.file);
        if (!parsed.ok() || parsed->nodes.size() != 1) {
          return SyntaxError(from_at, origin + ": cannot parse the trigger \"" + text + "\"" +
                                          (parsed.ok() ? "" : ": " + parsed.error().message()));
        }
        auto ins = ParseInstruction(parsed->nodes[0], parsed->directives.escape);
        if (!ins.ok()) {
          return SyntaxError(from_at, origin + ": " + ins.error().message());
        }
        if (ins->kind == Kind::kFrom || ins->kind == Kind::kOnbuild ||
            ins->kind == Kind::kMaintainer) {
          return SyntaxError(from_at, origin + ": " + KindName(ins->kind) +
                                          " is not allowed as an ONBUILD trigger");
        }
        triggers.push_back(std::move(ins).value());
        triggers.back().onbuild_of = origin;
      }
    }
    for (Instruction& t : triggers) {
      t.at = from_at;
      if (t.trigger) t.trigger = nullptr;
      SLIPWAY_RETURN_IF_ERROR(InStage(std::move(t)));
    }
    return Ok{};
  }

  Result<SourceRef> ResolveSource(const std::string& from, const Location& at) {
    SourceRef ref;
    const int current = static_cast<int>(plan_.stages.size()) - 1;
    const std::string lower = Lower(from);
    for (int i = 0; i < current; ++i) {
      if (!plan_.stages[i].name.empty() && plan_.stages[i].name == lower) {
        ref.stage = i;
        return ref;
      }
    }
    if (AllDigits(from)) {
      int idx = from.size() > 6 ? 1 << 30 : std::stoi(from);
      if (idx >= current) {
        return SyntaxError(
            at, "invalid from flag value " + from + ": refers to current or future build stage");
      }
      ref.stage = idx;
      return ref;
    }
    ref.image = from;
    return ref;
  }

  Result<void> InStage(Instruction ins) {
    Stage& s = plan_.stages.back();
    const int index = static_cast<int>(s.instructions.size());
    // Values from the start of the instruction: ARG and ENV change the stage's maps, not this
    // view, which is rebuilt only when the next instruction asks for it.
    const Env& env = Visible();
    if (ins.kind == Kind::kArg || ins.kind == Kind::kEnv) visible_dirty_ = true;
    switch (ins.kind) {
      case Kind::kArg: {
        for (ArgDecl& a : ins.args) {
          SLIPWAY_ASSIGN_OR_RETURN(a.name, Expand(a.name, env, ins.at));
          if (a.name.empty()) return SyntaxError(ins.at, "ARG names can not be blank");
          declared_.insert(a.name);
          auto given = opts_.build_args.find(a.name);
          if (given != opts_.build_args.end()) {
            s.args[a.name] = given->second;
          } else if (a.default_value) {
            SLIPWAY_ASSIGN_OR_RETURN(a.default_value, Expand(*a.default_value, env, ins.at));
            s.args[a.name] = *a.default_value;
          } else if (plan_.global_args.count(a.name)) {
            s.args[a.name] = plan_.global_args[a.name];
          } else if (automatic_.count(a.name)) {
            s.args[a.name] = automatic_[a.name];
          }
          auto set = s.args.find(a.name);
          if (set != s.args.end()) ins.arg_values[a.name] = set->second;
        }
        break;
      }
      case Kind::kEnv:
      case Kind::kLabel: {
        for (KeyValue& kv : ins.pairs) {
          SLIPWAY_ASSIGN_OR_RETURN(kv.key, Expand(kv.key, env, ins.at));
          SLIPWAY_ASSIGN_OR_RETURN(kv.value, Expand(kv.value, env, ins.at));
          if (kv.key.empty()) {
            return SyntaxError(ins.at, std::string(KindName(ins.kind)) + " names can not be blank");
          }
          if (ins.kind == Kind::kEnv) s.env[kv.key] = kv.value;
        }
        break;
      }
      case Kind::kCopy:
      case Kind::kAdd: {
        CopySpec& c = ins.copy;
        for (std::string& src : c.sources) {
          if (src.rfind("<<", 0) == 0 && !ins.heredocs.empty()) continue;  // a heredoc source
          SLIPWAY_ASSIGN_OR_RETURN(src, Expand(src, env, ins.at));
        }
        SLIPWAY_ASSIGN_OR_RETURN(c.dest, Expand(c.dest, env, ins.at));
        SLIPWAY_ASSIGN_OR_RETURN(c.from, Expand(c.from, env, ins.at));
        SLIPWAY_ASSIGN_OR_RETURN(c.chown, Expand(c.chown, env, ins.at));
        SLIPWAY_ASSIGN_OR_RETURN(c.chmod, Expand(c.chmod, env, ins.at));
        if (!c.chmod.empty() && !ValidChmod(c.chmod)) {
          return SyntaxError(ins.at, "invalid --chmod value \"" + c.chmod +
                                         "\": expected octal (0755) or symbolic (u=rwX,go=rX)");
        }
        SLIPWAY_ASSIGN_OR_RETURN(c.checksum, Expand(c.checksum, env, ins.at));
        for (std::string& e : c.excludes) {
          SLIPWAY_ASSIGN_OR_RETURN(e, Expand(e, env, ins.at));
        }
        for (Heredoc& h : ins.heredocs) {
          if (h.expand) {
            SLIPWAY_ASSIGN_OR_RETURN(h.content, Expand(h.content, env, ins.at));
          }
        }
        if (!c.checksum.empty()) {
          const std::string& k = c.checksum;
          const bool digest = k.rfind("sha256:", 0) == 0 && k.size() == 71 &&
                              k.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
          const bool git = k.find_first_not_of("0123456789abcdef") == std::string::npos &&
                           k.size() >= 7 && k.size() <= 64;
          if (!digest && !git) {
            return SyntaxError(ins.at, "invalid --checksum \"" + k +
                                           "\": expected sha256:<64 hex digits> or a commit id");
          }
        }
        // Several sources need a directory destination. Only sources without wildcards count
        // here: each must exist, while a wildcard may match nothing (checked when matched).
        const auto literal = std::count_if(c.sources.begin(), c.sources.end(), [](const auto& x) {
          return x.find_first_of("*?[") == std::string::npos;
        });
        if (literal > 1 && !c.dest.empty() && c.dest.back() != '/' && c.dest.back() != '.') {
          return SyntaxError(ins.at, std::string("When using ") + KindName(ins.kind) +
                                         " with more than one source file, the destination must "
                                         "be a directory and end with a /");
        }
        if (!c.from.empty()) {
          SLIPWAY_ASSIGN_OR_RETURN(s.sources[index], ResolveSource(c.from, ins.at));
        }
        break;
      }
      case Kind::kExpose: {
        std::vector<std::string> ports;
        for (const std::string& w : ins.words) {
          SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> ex, ExpandWords(w, env, ins.at));
          for (std::string& p : ex) {
            if (!ValidPort(p)) return SyntaxError(ins.at, "invalid containerPort: " + p);
            ports.push_back(std::move(p));
          }
        }
        ins.words = std::move(ports);
        break;
      }
      case Kind::kVolume: {
        for (std::string& w : ins.words) {
          SLIPWAY_ASSIGN_OR_RETURN(w, Expand(w, env, ins.at));
          if (w.empty()) return SyntaxError(ins.at, "VOLUME specified can not be an empty string");
        }
        break;
      }
      case Kind::kUser:
      case Kind::kWorkdir:
      case Kind::kStopsignal: {
        SLIPWAY_ASSIGN_OR_RETURN(ins.value, Expand(ins.value, env, ins.at));
        if (ins.value.empty()) {
          return SyntaxError(ins.at,
                             std::string(KindName(ins.kind)) + " expands to an empty value");
        }
        if (ins.kind == Kind::kStopsignal && !ValidSignal(ins.value)) {
          return SyntaxError(ins.at, "invalid signal: " + ins.value);
        }
        break;
      }
      case Kind::kRun: {
        for (Mount& m : ins.mounts) {
          for (std::string* f : {&m.target, &m.source, &m.from, &m.id, &m.env}) {
            SLIPWAY_ASSIGN_OR_RETURN(*f, Expand(*f, env, ins.at));
          }
          if (!m.from.empty()) {
            SLIPWAY_ASSIGN_OR_RETURN(SourceRef ref, ResolveSource(m.from, ins.at));
            s.mount_sources[index].push_back(ref);
          }
        }
        break;
      }
      case Kind::kFrom:
      case Kind::kCmd:
      case Kind::kEntrypoint:
      case Kind::kShell:
      case Kind::kMaintainer:
      case Kind::kOnbuild:
      case Kind::kHealthcheck:
        break;  // nothing the builder expands
    }
    s.instructions.push_back(std::move(ins));
    return Ok{};
  }

  Result<void> Finish() {
    std::vector<std::string> unused;
    for (const auto& [k, v] : opts_.build_args) {
      if (!declared_.count(k) && !IsProxyArg(k) && !IsBuiltinArg(k)) unused.push_back(k);
    }
    if (!unused.empty()) {
      std::string list;
      for (const auto& u : unused) list += (list.empty() ? "" : " ") + u;
      plan_.warnings.push_back({{parsed_.nodes.front().at.file, 0, 0},
                                "UnusedBuildArg",
                                "One or more build-args [" + list + "] were not consumed"});
    }
    auto sde = opts_.build_args.find("SOURCE_DATE_EPOCH");
    if (sde != opts_.build_args.end()) {
      if (!AllDigits(sde->second) || sde->second.size() > 18) {
        return Error("invalid SOURCE_DATE_EPOCH \"" + sde->second +
                         "\": expected seconds since 1970 as a whole number",
                     EINVAL);
      }
      plan_.source_date_epoch = std::stoll(sde->second);
    }
    if (opts_.target.empty()) {
      plan_.target = static_cast<int>(plan_.stages.size()) - 1;
    } else {
      const std::string t = Lower(opts_.target);
      for (const Stage& s : plan_.stages) {
        if (s.name == t) plan_.target = s.index;
      }
      if (plan_.target < 0) {
        return Error("target stage \"" + opts_.target + "\" could not be found", EINVAL);
      }
    }
    std::vector<bool> need(plan_.stages.size(), false);
    std::function<void(int)> visit = [&](int i) {
      if (i < 0 || need[i]) return;
      need[i] = true;
      const Stage& s = plan_.stages[i];
      visit(s.base_stage);
      for (const auto& [idx, ref] : s.sources) visit(ref.stage);
      for (const auto& [idx, refs] : s.mount_sources) {
        for (const SourceRef& r : refs) visit(r.stage);
      }
    };
    visit(plan_.target);
    for (std::size_t i = 0; i < need.size(); ++i) {
      if (need[i]) plan_.needed.push_back(static_cast<int>(i));
    }
    return Ok{};
  }

  const ParseResult& parsed_;
  const BuildOptions& opts_;
  ShellLex lex_;
  Plan plan_;
  Env automatic_;
  Env image_env_;
  std::set<std::string> declared_;
  std::vector<std::size_t> stage_sizes_;  // nodes per FROM (after a preamble of global ARGs)
  bool has_preamble_ = false;
  Env visible_;
  bool visible_dirty_ = true;
};

}  // namespace

bool IsProxyArg(const std::string& n) {
  static const std::set<std::string> k = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                          "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                          "ALL_PROXY",  "all_proxy"};
  return k.count(n) > 0;
}

bool IsBuiltinArg(const std::string& n) {
  static const std::set<std::string> k = {"TARGETPLATFORM",
                                          "TARGETOS",
                                          "TARGETARCH",
                                          "TARGETVARIANT",
                                          "BUILDPLATFORM",
                                          "BUILDOS",
                                          "BUILDARCH",
                                          "BUILDVARIANT",
                                          "SOURCE_DATE_EPOCH",
                                          "BUILDKIT_CACHE_MOUNT_NS",
                                          "BUILDKIT_CONTEXT_KEEP_GIT_DIR",
                                          "BUILDKIT_INLINE_CACHE",
                                          "BUILDKIT_MULTI_PLATFORM",
                                          "BUILDKIT_SANDBOX_HOSTNAME",
                                          "BUILDKIT_SYNTAX",
                                          "BUILDKIT_BUILD_NAME"};
  return k.count(n) > 0;
}

Result<Plan> MakePlan(const ParseResult& parsed, const BuildOptions& options) {
  Planner p(parsed, options);
  return p.Run();
}

Result<Plan> PlanDockerfile(std::string_view text, const std::string& file,
                            const BuildOptions& options) {
  SLIPWAY_ASSIGN_OR_RETURN(ParseResult parsed, Parse(text, file));
  return MakePlan(parsed, options);
}

}  // namespace slipway::dockerfile
