#include "executor/progress.h"

#include <cerrno>
#include <nlohmann/json.hpp>

namespace slipway::executor {

Result<LogFormat> ParseLogFormat(const std::string& s) {
  if (s == "text" || s == "plain" || s == "color") return LogFormat::kPlain;
  if (s == "json") return LogFormat::kJson;
  return Error("--log-format \"" + s + "\": expected text, color or json", EINVAL);
}

Result<Verbosity> ParseVerbosity(const std::string& s) {
  if (s == "panic" || s == "fatal" || s == "error") return Verbosity::kError;
  if (s == "warn" || s == "warning") return Verbosity::kWarn;
  if (s == "info") return Verbosity::kInfo;
  if (s == "debug") return Verbosity::kDebug;
  if (s == "trace") return Verbosity::kTrace;
  return Error("--verbosity \"" + s + "\": expected panic, fatal, error, warn, info, debug or trace",
               EINVAL);
}

double Progress::Seconds(int step) {
  auto it = started_.find(step);
  if (it == started_.end()) return 0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second).count();
}

void Progress::Json(const std::map<std::string, std::string>& fields) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : fields) j[k] = v;
  std::fprintf(out_, "%s\n", j.dump().c_str());
  std::fflush(out_);
}

int Progress::Start(const std::string& name) {
  std::lock_guard<std::mutex> l(mu_);
  const int step = next_++;
  started_[step] = std::chrono::steady_clock::now();
  if (verbosity_ < Verbosity::kInfo) return step;
  if (format_ == LogFormat::kJson) {
    Json({{"event", "start"}, {"step", std::to_string(step)}, {"name", name}});
  } else {
    std::fprintf(out_, "#%d %s\n", step, name.c_str());
    std::fflush(out_);
  }
  return step;
}

void Progress::Output(int step, std::string_view line) {
  std::lock_guard<std::mutex> l(mu_);
  if (verbosity_ < Verbosity::kInfo) return;
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.3f", Seconds(step));
  if (format_ == LogFormat::kJson) {
    Json({{"event", "output"}, {"step", std::to_string(step)}, {"time", secs},
          {"line", std::string(line)}});
  } else {
    std::fprintf(out_, "#%d %s %.*s\n", step, secs, static_cast<int>(line.size()), line.data());
    std::fflush(out_);
  }
}

void Progress::Done(int step, const std::string& marker) {
  std::lock_guard<std::mutex> l(mu_);
  const double s = Seconds(step);
  started_.erase(step);
  if (verbosity_ < Verbosity::kInfo) return;
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.1fs", s);
  if (format_ == LogFormat::kJson) {
    std::map<std::string, std::string> f = {
        {"event", "done"}, {"step", std::to_string(step)}, {"seconds", secs}};
    if (!marker.empty()) f["marker"] = marker;
    Json(f);
  } else {
    std::fprintf(out_, "#%d DONE %s%s\n", step, secs,
                 marker.empty() ? "" : (" (" + marker + ")").c_str());
    std::fflush(out_);
  }
}

void Progress::Failed(int step, const std::string& message) {
  std::lock_guard<std::mutex> l(mu_);
  const double s = Seconds(step);
  started_.erase(step);
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.1fs", s);
  if (format_ == LogFormat::kJson) {
    Json({{"event", "error"}, {"step", std::to_string(step)}, {"seconds", secs},
          {"message", message}});
  } else {
    std::fprintf(out_, "#%d ERROR %s: %s\n", step, secs, message.c_str());
    std::fflush(out_);
  }
}

void Progress::Message(Verbosity level, const std::string& text) {
  std::lock_guard<std::mutex> l(mu_);
  if (level > verbosity_) return;
  static const char* const kNames[] = {"error", "warning", "info", "debug", "trace"};
  if (format_ == LogFormat::kJson) {
    Json({{"event", "message"}, {"level", kNames[static_cast<int>(level)]}, {"message", text}});
  } else if (level == Verbosity::kInfo) {
    std::fprintf(out_, "%s\n", text.c_str());
  } else {
    std::fprintf(out_, "%s: %s\n", kNames[static_cast<int>(level)], text.c_str());
  }
  std::fflush(out_);
}

void Progress::Timing(int step, const std::vector<std::pair<std::string, double>>& phases) {
  std::lock_guard<std::mutex> l(mu_);
  if (verbosity_ < Verbosity::kDebug) return;
  if (format_ == LogFormat::kJson) {
    std::map<std::string, std::string> f = {{"event", "timing"}, {"step", std::to_string(step)}};
    for (const auto& [k, v] : phases) {
      char b[32];
      std::snprintf(b, sizeof(b), "%.6f", v);
      f[k] = b;
    }
    Json(f);
    return;
  }
  std::string text;
  for (const auto& [k, v] : phases) {
    char b[64];
    std::snprintf(b, sizeof(b), "%s%s %.3fs", text.empty() ? "" : ", ", k.c_str(), v);
    text += b;
  }
  std::fprintf(out_, "#%d timing: %s\n", step, text.c_str());
  std::fflush(out_);
}

void Progress::Summary(const std::string& text, const std::map<std::string, std::string>& fields) {
  std::lock_guard<std::mutex> l(mu_);
  if (format_ == LogFormat::kJson) {
    auto f = fields;
    f["event"] = "summary";
    Json(f);
  } else if (verbosity_ >= Verbosity::kWarn) {
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
  }
}

}  // namespace slipway::executor
