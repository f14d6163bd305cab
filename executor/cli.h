// The `slipway` command line: kaniko's executor flags, parsed into a BuildRequest.
//
//   CliOptions o;
//   Result<void> r = ParseCommandLine(argc, argv, &o);   // errors name the flag
//   if (o.help) puts(HelpText());
//
// Flags take `--flag=value` or `--flag value`; booleans also `--flag=true|false`; the short
// forms -c, -f, -d exist as in kaniko. Repeatable: --build-arg, --label, --destination,
// --ignore-path, --image-source, --secret, --insecure-registry, --registry-certificate,
// --registry-mirror. Registry and layer-cache flags fill BuildRequest::registry and cache*.
#ifndef SLIPWAY_EXECUTOR_CLI_H_
#define SLIPWAY_EXECUTOR_CLI_H_

#include <cstdlib>
#include <functional>
#include <string>

#include "base/result.h"
#include "executor/build.h"
#include "executor/progress.h"

namespace slipway::executor {

struct CliOptions {
  BuildRequest request;
  LogFormat log_format = LogFormat::kPlain;
  Verbosity verbosity = Verbosity::kInfo;
  bool help = false;
  bool version = false;
};

// `env` looks up environment variables (for `--build-arg NAME` without a value).
Result<void> ParseCommandLine(int argc, const char* const* argv, CliOptions* out,
                              const std::function<const char*(const char*)>& env = getenv);

const char* HelpText();

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_CLI_H_
