// Typed Dockerfile instructions, parsed from parser.h's nodes.
//
//   SLIPWAY_ASSIGN_OR_RETURN(Instruction ins, ParseInstruction(node, directives.escape));
//   if (ins.kind == Kind::kRun && ins.command.exec_form) ...
//
// Each instruction's flags are validated (unknown or duplicate flags are errors naming the flag,
// its line and column), exec form is told from shell form exactly as BuildKit does (a JSON array
// of strings; a JSON array with non-strings is an error; anything else is shell form), and the
// structure is checked (FROM's 1 or 3 words and stage name, ENV/LABEL/ARG name=value forms, the
// ONBUILD restrictions, HEALTHCHECK options, RUN --mount options, COPY/ADD argument counts).
// Values are kept as written: variable expansion happens in plan.h, with the right scope.
//
// Guarantees: pure; allocates.
#ifndef SLIPWAY_DOCKERFILE_INSTRUCTIONS_H_
#define SLIPWAY_DOCKERFILE_INSTRUCTIONS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "dockerfile/parser.h"

namespace slipway::dockerfile {

enum class Kind {
  kFrom,
  kRun,
  kCmd,
  kEntrypoint,
  kShell,
  kLabel,
  kMaintainer,
  kExpose,
  kEnv,
  kAdd,
  kCopy,
  kVolume,
  kUser,
  kWorkdir,
  kArg,
  kOnbuild,
  kStopsignal,
  kHealthcheck,
};
const char* KindName(Kind kind);  // "RUN"

struct CommandLine {
  bool exec_form = false;
  std::vector<std::string> exec;  // exec form
  std::string shell;              // shell form, as written
};

struct KeyValue {
  std::string key;
  std::string value;
};

struct ArgDecl {
  std::string name;
  std::optional<std::string> default_value;
};

// One RUN --mount, with BuildKit's option names and defaults.
struct Mount {
  std::string type = "bind";  // bind | cache | tmpfs | secret | ssh
  std::string target;
  std::string source;
  std::string from;
  std::string id;
  std::string sharing = "shared";  // cache: shared | private | locked
  std::optional<std::uint32_t> mode;
  std::optional<std::uint32_t> uid, gid;
  std::optional<std::uint64_t> size;  // tmpfs, bytes
  std::string env;                    // secret as an environment variable
  bool readonly = true;               // bind defaults to read-only; cache and tmpfs to writable
  bool required = false;
  std::string ToString() const;
};

// Parses one --mount value ("type=cache,target=/root/.cache,sharing=locked").
Result<Mount> ParseMount(const std::string& value);

struct CopySpec {
  std::vector<std::string> sources;  // as written (a heredoc source is "<<NAME")
  std::string dest;
  std::string from, chown, chmod, checksum;
  bool link = false, parents = false, keep_git_dir = false;
  std::optional<bool> unpack;
  std::vector<std::string> excludes;
};

struct Healthcheck {
  bool none = false;
  CommandLine command;
  std::int64_t interval_ns = 0, timeout_ns = 0, start_period_ns = 0, start_interval_ns = 0;
  int retries = 0;
};

struct Instruction {
  Kind kind = Kind::kRun;
  Location at;
  std::string original;

  // FROM
  std::string image, platform, stage_name;
  // RUN, CMD, ENTRYPOINT
  CommandLine command;
  std::vector<Mount> mounts;
  std::string network, security;
  std::vector<Heredoc> heredocs;
  // SHELL, VOLUME, EXPOSE
  std::vector<std::string> words;
  // ENV, LABEL
  std::vector<KeyValue> pairs;
  // ARG
  std::vector<ArgDecl> args;
  // USER, WORKDIR, STOPSIGNAL, MAINTAINER; ONBUILD: the trigger as written
  std::string value;
  // COPY, ADD
  CopySpec copy;
  // HEALTHCHECK
  Healthcheck health;
  // ONBUILD: the parsed trigger
  std::shared_ptr<const Instruction> trigger;

  // Filled in by the plan (plan.h):
  // ARG: the value each declared name gets (a build arg, else the default, else the global ARG,
  // else an automatic platform ARG); a name with no value is absent.
  std::map<std::string, std::string> arg_values;
  // Set on an instruction that came from an ONBUILD trigger of the base: where it came from
  // ("ONBUILD of image busybox:latest", "ONBUILD of stage base").
  std::string onbuild_of;
};

Result<Instruction> ParseInstruction(const Node& node, char escape);

// How a RUN with heredocs runs (checklist 27):
//   kScript      `RUN <<EOF` alone, body starting with "#!": written to a file and executed;
//   kShellBody   `RUN <<EOF` alone, no shebang: the body is the shell-form command;
//   kShellText   anything else: "cmd\n<body1>DELIM1\n..." goes to the shell as one string.
enum class RunHeredocKind { kNone, kScript, kShellBody, kShellText };
struct RunHeredoc {
  RunHeredocKind kind = RunHeredocKind::kNone;
  std::string text;
};
RunHeredoc ClassifyRunHeredoc(const Instruction& run);

// A --chmod value: octal (up to 4 digits) or symbolic ("u=rwX,go=rX", "+x").
bool ValidChmod(const std::string& mode);

// Go-style duration ("1m30s", "500ms", "2h") in nanoseconds.
Result<std::int64_t> ParseDuration(const std::string& text);

// Splits on blanks, keeping quotes and escapes in the words (BuildKit's parseWords).
std::vector<std::string> SplitWordsKeepQuotes(std::string_view text, char escape);

// If `text` (left-trimmed) is a JSON array of strings, returns true and fills `out`. A JSON array
// with a non-string element is an error; anything else returns false (shell form).
Result<bool> ParseJsonArray(std::string_view text, std::vector<std::string>* out);

}  // namespace slipway::dockerfile

#endif  // SLIPWAY_DOCKERFILE_INSTRUCTIONS_H_
