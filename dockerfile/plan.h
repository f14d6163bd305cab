// The build plan: stages, their instructions with variables expanded in the right scope, the
// target and the stages it needs.
//
//   BuildOptions opts;
//   opts.build_args = {{"VERSION", "1.2"}};
//   opts.target = "builder";
//   SLIPWAY_ASSIGN_OR_RETURN(Plan plan, PlanDockerfile(text, "Dockerfile", opts));
//   for (int s : plan.needed) Build(plan.stages[s]);
//
// Scoping (shared/reference/dockerfile-syntax.md §4.6): ARGs before the first FROM are global and
// visible only to FROM lines until a stage redeclares them; a stage ARG is in effect from its line;
// ENV overrides ARG; within one instruction every variable has its value from the start of the
// instruction; a stage built FROM another stage inherits its ENV and ARGs; the proxy ARGs work
// without ARG and the automatic platform ARGs are global. Build args nobody declares are reported.
// Expanded: FROM (image, --platform), COPY/ADD (sources, dest, --from, --chown, --chmod,
// --checksum, --exclude), ENV, LABEL, ARG, EXPOSE, STOPSIGNAL, USER, VOLUME, WORKDIR and RUN
// --mount values. Never expanded: RUN/CMD/ENTRYPOINT/HEALTHCHECK commands, ONBUILD triggers.
//
// Triggers spliced in after FROM carry Instruction::onbuild_of and the FROM line's location.
//
// A base image's own ENV is not known from the Dockerfile: pass it through BuildOptions::image_env
// when the executor has resolved the image; without it such variables are unset here.
//
// Guarantees: pure; allocates; errors carry file:line:column.
#ifndef SLIPWAY_DOCKERFILE_PLAN_H_
#define SLIPWAY_DOCKERFILE_PLAN_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "dockerfile/instructions.h"
#include "dockerfile/parser.h"
#include "dockerfile/shell_lex.h"

namespace slipway::dockerfile {

struct BuildOptions {
  std::map<std::string, std::string> build_args;
  std::string target;  // empty: the last stage
  std::string target_platform = "linux/amd64";
  std::string build_platform = "linux/amd64";
  // ENV of a base image, by reference as written after expansion (optional).
  std::function<Env(const std::string& image)> image_env;
  // ONBUILD triggers of a base image (its config's OnBuild), by reference (optional). They run
  // right after the FROM that names the image; a stage FROM an earlier stage runs that stage's
  // own ONBUILD instructions. Triggers are not passed on to grandchildren.
  std::function<std::vector<std::string>(const std::string& image)> image_onbuild;
};

// Where COPY --from / RUN --mount from= points.
struct SourceRef {
  int stage = -1;     // an earlier stage, or -1
  std::string image;  // otherwise an image reference
};

struct Stage {
  int index = 0;
  std::string name;      // lower-case, or empty
  std::string base;      // FROM after expansion
  int base_stage = -1;   // FROM <earlier stage>
  bool scratch = false;  // FROM scratch
  std::string platform;  // --platform after expansion
  Location at;
  std::vector<Instruction> instructions;                // expanded
  std::map<int, SourceRef> sources;                     // instruction index -> COPY --from
  std::map<int, std::vector<SourceRef>> mount_sources;  // instruction index -> RUN --mount from=
  Env args;  // the ARGs in effect at the end of the stage (values for RUN's environment)
  Env env;   // the ENV set by the Dockerfile in this stage (and inherited from a parent stage)
};

struct Plan {
  Directives directives;
  std::vector<Stage> stages;
  Env global_args;
  int target = -1;
  std::vector<int> needed;  // ascending; always contains target
  std::optional<long long> source_date_epoch;
  std::vector<Warning> warnings;
};

Result<Plan> MakePlan(const ParseResult& parsed, const BuildOptions& options);
Result<Plan> PlanDockerfile(std::string_view text, const std::string& file,
                            const BuildOptions& options);

// The ARGs Docker predefines: usable without ARG (proxy settings) or built in.
bool IsProxyArg(const std::string& name);
bool IsBuiltinArg(const std::string& name);

}  // namespace slipway::dockerfile

#endif  // SLIPWAY_DOCKERFILE_PLAN_H_
