// dockerfile-plan: parses a Dockerfile and prints its build plan (stages, expanded instructions,
// target, warnings) -- the same text the golden tests compare.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "dockerfile/plan.h"
#include "dockerfile/render.h"

int main(int argc, char** argv) {
  using namespace slipway::dockerfile;
  std::string file;
  BuildOptions opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << "Usage: dockerfile-plan FILE [--build-arg NAME=VALUE]... [--target STAGE]\n"
                   "Prints the plan Slipway makes of the Dockerfile FILE.\n";
      return 0;
    } else if (a == "--build-arg" && i + 1 < argc) {
      std::string kv = argv[++i];
      std::size_t eq = kv.find('=');
      opts.build_args[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    } else if (a == "--target" && i + 1 < argc) {
      opts.target = argv[++i];
    } else if (file.empty()) {
      file = a;
    } else {
      std::cerr << "dockerfile-plan: unexpected argument " << a << "\n";
      return 2;
    }
  }
  if (file.empty()) {
    std::cerr << "dockerfile-plan: FILE is required (see --help)\n";
    return 2;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << "dockerfile-plan: cannot read " << file << "\n";
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto plan = PlanDockerfile(ss.str(), file, opts);
  if (!plan.ok()) {
    std::cerr << "dockerfile-plan: " << plan.error().ToString() << "\n";
    return 1;
  }
  std::cout << RenderPlan(*plan);
  return 0;
}
