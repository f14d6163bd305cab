// slipway: the executor binary. See executor/cli.cc for the flags.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "executor/build.h"
#include "executor/cli.h"
#include "executor/reaper_image.h"
#include "executor/spawn.h"

int main(int argc, char** argv) {
  using namespace slipway::executor;
  CliOptions o;
  auto parsed = ParseCommandLine(argc, argv, &o);
  if (!parsed.ok()) {
    std::fprintf(stderr, "slipway: %s\n", parsed.error().ToString().c_str());
    return 2;
  }
  if (o.help) {
    std::fputs(HelpText(), stdout);
    return 0;
  }
  if (o.version) {
    std::puts("slipway 0.1.0");
    return 0;
  }
  InstallSignalForwarding();
  Progress progress(stderr, o.log_format, o.verbosity);
  // Steps' reapers start from the small static reaper; without it (a kernel without memfd
  // sealing), from this binary, which works the same, only slower.
  if (auto r = UseReaperImage(ReaperImage()); !r.ok()) {
    progress.Message(Verbosity::kDebug, "using /proc/self/exe as the reaper: " + r.error().ToString());
  }
  BuildOutcome out = Build(o.request, progress);
  if (out.exit_code != 0) {
    if (o.log_format == LogFormat::kJson) {
      nlohmann::json j = {{"event", "failed"}, {"error", out.error},
                          {"exit_code", out.exit_code}};
      std::fprintf(stderr, "%s\n", j.dump().c_str());
    } else {
      std::fprintf(stderr, "slipway: error: %s\n", out.error.c_str());
    }
  }
  return out.exit_code;
}
