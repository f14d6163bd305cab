// What a person (or a machine) sees while Slipway builds: BuildKit-style plain progress on
// stderr, or one JSON object per line with --log-format json.
//
//   #3 [2/5] RUN groupadd -g 20000 bar
//   #3 0.102 some output of the step
//   #3 DONE 0.4s
//
// Steps are numbered in the order they start; a step's output lines carry the seconds since it
// started. Verbosity filters messages (error < warn < info < debug < trace); step progress is
// info. Thread-safe.
#ifndef SLIPWAY_EXECUTOR_PROGRESS_H_
#define SLIPWAY_EXECUTOR_PROGRESS_H_

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace slipway::executor {

enum class LogFormat { kPlain, kJson };
enum class Verbosity { kError = 0, kWarn, kInfo, kDebug, kTrace };

Result<LogFormat> ParseLogFormat(const std::string& s);    // text|plain|color -> plain; json
Result<Verbosity> ParseVerbosity(const std::string& s);  // panic|fatal|error|warn|info|debug|trace

class Progress {
 public:
  explicit Progress(FILE* out = stderr, LogFormat format = LogFormat::kPlain,
                    Verbosity verbosity = Verbosity::kInfo)
      : out_(out), format_(format), verbosity_(verbosity) {}

  int Start(const std::string& name);
  void Output(int step, std::string_view line);
  // "DONE 0.4s", or with a marker: "DONE 0.0s (empty layer)".
  void Done(int step, const std::string& marker = "");
  void Failed(int step, const std::string& message);
  void Message(Verbosity level, const std::string& text);
  // Phase times of a step, at debug level: "#3 timing: run 0.120s, snapshot 0.004s".
  void Timing(int step, const std::vector<std::pair<std::string, double>>& phases);
  // The final summary, also as JSON fields.
  void Summary(const std::string& text, const std::map<std::string, std::string>& fields);

  Verbosity verbosity() const { return verbosity_; }

 private:
  double Seconds(int step);
  void Json(const std::map<std::string, std::string>& fields);

  FILE* out_;
  LogFormat format_;
  Verbosity verbosity_;
  std::mutex mu_;
  int next_ = 1;
  std::map<int, std::chrono::steady_clock::time_point> started_;
};

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_PROGRESS_H_
