#include "dockerfile/render.h"

#include <nlohmann/json.hpp>
#include <sstream>

namespace slipway::dockerfile {
namespace {

std::string Q(const std::string& s) { return nlohmann::json(s).dump(); }

std::string List(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

std::string Command(const CommandLine& c) {
  return c.exec_form ? "exec " + List(c.exec) : "shell " + Q(c.shell);
}

std::string Ref(const SourceRef& r) {
  return r.stage >= 0 ? "stage " + std::to_string(r.stage) : "image " + Q(r.image);
}

void RenderInstruction(std::ostringstream& o, const Stage& s, int idx, const Instruction& ins,
                       const std::string& indent) {
  o << indent << "L" << ins.at.line << " " << KindName(ins.kind);
  switch (ins.kind) {
    case Kind::kFrom:
      o << " " << Q(ins.image);
      if (!ins.platform.empty()) o << " platform=" << Q(ins.platform);
      if (!ins.stage_name.empty()) o << " as=" << Q(ins.stage_name);
      break;
    case Kind::kRun:
      o << " " << Command(ins.command);
      for (const Mount& m : ins.mounts) o << " mount=" << Q(m.ToString());
      if (!ins.network.empty()) o << " network=" << ins.network;
      if (!ins.security.empty()) o << " security=" << ins.security;
      if (s.mount_sources.count(idx)) {
        for (const SourceRef& r : s.mount_sources.at(idx)) o << " mount-from=(" << Ref(r) << ")";
      }
      break;
    case Kind::kCmd:
    case Kind::kEntrypoint:
      o << " " << Command(ins.command);
      break;
    case Kind::kShell:
    case Kind::kExpose:
    case Kind::kVolume:
      o << " " << List(ins.words);
      break;
    case Kind::kEnv:
    case Kind::kLabel:
      for (const KeyValue& kv : ins.pairs) o << " " << Q(kv.key) << "=" << Q(kv.value);
      break;
    case Kind::kArg:
      for (const ArgDecl& a : ins.args) {
        o << " " << Q(a.name);
        if (a.default_value) o << "=" << Q(*a.default_value);
      }
      break;
    case Kind::kCopy:
    case Kind::kAdd: {
      const CopySpec& c = ins.copy;
      o << " sources=" << List(c.sources) << " dest=" << Q(c.dest);
      if (!c.from.empty()) {
        o << " from=" << Q(c.from);
        if (s.sources.count(idx)) o << "(" << Ref(s.sources.at(idx)) << ")";
      }
      if (!c.chown.empty()) o << " chown=" << Q(c.chown);
      if (!c.chmod.empty()) o << " chmod=" << Q(c.chmod);
      if (!c.checksum.empty()) o << " checksum=" << Q(c.checksum);
      if (c.link) o << " link";
      if (c.parents) o << " parents";
      if (c.keep_git_dir) o << " keep-git-dir";
      if (c.unpack) o << " unpack=" << (*c.unpack ? "true" : "false");
      if (!c.excludes.empty()) o << " exclude=" << List(c.excludes);
      break;
    }
    case Kind::kHealthcheck:
      if (ins.health.none) {
        o << " NONE";
      } else {
        o << " " << Command(ins.health.command) << " interval=" << ins.health.interval_ns
          << " timeout=" << ins.health.timeout_ns << " start-period=" << ins.health.start_period_ns
          << " start-interval=" << ins.health.start_interval_ns
          << " retries=" << ins.health.retries;
      }
      break;
    case Kind::kOnbuild:
      o << " " << Q(ins.value);
      break;
    default:
      o << " " << Q(ins.value);
      break;
  }
  if (ins.kind == Kind::kRun && !ins.heredocs.empty()) {
    const RunHeredoc rh = ClassifyRunHeredoc(ins);
    o << " runs-as="
      << (rh.kind == RunHeredocKind::kScript      ? "script"
          : rh.kind == RunHeredocKind::kShellBody ? "shell-body"
                                                  : "shell-text");
  }
  o << "\n";
  for (const Heredoc& h : ins.heredocs) {
    o << indent << "  heredoc " << Q(h.name) << (h.expand ? "" : " quoted")
      << (h.chomp ? " chomp" : "");
    if (h.fd >= 0) o << " fd=" << h.fd;
    o << " " << Q(h.content) << "\n";
  }
}

}  // namespace

std::string RenderPlan(const Plan& plan) {
  std::ostringstream o;
  o << "escape " << Q(std::string(1, plan.directives.escape));
  if (plan.directives.syntax) o << " syntax=" << Q(*plan.directives.syntax);
  if (plan.directives.check) o << " check=" << Q(*plan.directives.check);
  o << "\n";
  for (const auto& [k, v] : plan.global_args) o << "global ARG " << Q(k) << "=" << Q(v) << "\n";
  for (const Stage& s : plan.stages) {
    o << "stage " << s.index;
    if (!s.name.empty()) o << " " << Q(s.name);
    o << " from ";
    if (s.base_stage >= 0) {
      o << "stage " << s.base_stage;
    } else if (s.scratch) {
      o << "scratch";
    } else {
      o << "image " << Q(s.base);
    }
    o << "\n";
    for (std::size_t i = 0; i < s.instructions.size(); ++i) {
      RenderInstruction(o, s, static_cast<int>(i), s.instructions[i], "  ");
    }
    if (!s.args.empty()) {
      o << "  args";
      for (const auto& [k, v] : s.args) o << " " << Q(k) << "=" << Q(v);
      o << "\n";
    }
    if (!s.env.empty()) {
      o << "  env";
      for (const auto& [k, v] : s.env) o << " " << Q(k) << "=" << Q(v);
      o << "\n";
    }
  }
  o << "target " << plan.target << " needs";
  for (int n : plan.needed) o << " " << n;
  o << "\n";
  for (const Warning& w : plan.warnings) o << "warning " << w.ToString() << "\n";
  return o.str();
}

}  // namespace slipway::dockerfile
