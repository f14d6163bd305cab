// Conformance: every Dockerfile under testdata/ (kaniko's integration suite in testdata/kaniko,
// our own cases in testdata/cases) is planned and rendered, and the text must equal NAME.golden.
// A file may fail: then the golden holds "error: <message>". NAME.buildargs gives --build-args.
// *.dockerignore files are parsed as ignore files and their patterns rendered.
//
// To accept new output after a deliberate change:
//   UPDATE_GOLDENS=1 bazel run //dockerfile:golden_test
// then read the diff before committing it.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/test_util.h"
#include "dockerfile/dockerignore.h"
#include "dockerfile/plan.h"
#include "dockerfile/render.h"

namespace slipway::dockerfile {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsInput(const fs::path& p) {
  const std::string ext = p.extension().string();
  return fs::is_regular_file(p) && ext != ".golden" && ext != ".buildargs" && ext != ".md";
}

std::string Render(const fs::path& p) {
  const std::string name = p.filename().string();
  const std::string text = Slurp(p);
  if (p.extension() == ".dockerignore") {
    auto ig = Dockerignore::Parse(text, name);
    if (!ig.ok()) return "error: " + ig.error().ToString() + "\n";
    std::string out;
    for (const auto& pat : ig->patterns()) {
      out += (pat.exception ? "include " : "exclude ") + pat.text + "\n";
    }
    return out;
  }
  BuildOptions opts;
  fs::path args = p;
  args += ".buildargs";
  if (fs::exists(args)) {
    std::istringstream in(Slurp(args));
    for (std::string line; std::getline(in, line);) {
      std::size_t eq = line.find('=');
      opts.build_args[line.substr(0, eq)] = eq == std::string::npos ? "" : line.substr(eq + 1);
    }
  }
  auto plan = PlanDockerfile(text, name, opts);
  if (!plan.ok()) return "error: " + plan.error().ToString() + "\n";
  return RenderPlan(*plan);
}

TEST_CASE("golden: every Dockerfile in testdata renders to its golden plan") {
  const fs::path root = testing::Runfile("dockerfile/testdata");
  const char* update_dir =
      std::getenv("UPDATE_GOLDENS") ? std::getenv("BUILD_WORKSPACE_DIRECTORY") : nullptr;
  int compared = 0, kaniko = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!IsInput(e.path())) continue;
    const std::string rel = e.path().lexically_relative(root).string();
    CAPTURE(rel);
    const std::string got = Render(e.path());
    fs::path golden = e.path();
    golden += ".golden";
    if (update_dir) {
      std::ofstream(fs::path(update_dir) / "dockerfile/testdata" / (rel + ".golden")) << got;
      continue;
    }
    REQUIRE_MESSAGE(fs::exists(golden), (std::string("no golden for ") + rel));
    CHECK(got == Slurp(golden));
    ++compared;
    if (rel.rfind("kaniko/", 0) == 0) ++kaniko;
  }
  if (!update_dir) {
    CHECK(kaniko >= 100);  // the whole corpus is here
    CHECK(compared > kaniko);
  }
}

}  // namespace
}  // namespace slipway::dockerfile
