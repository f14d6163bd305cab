// The build driver: a Dockerfile and a context in, an image out.
//
//   BuildRequest r;
//   r.context = "dir://."; r.dockerfile = "Dockerfile";
//   r.sources.Add("ubuntu:latest=oci-layout:/images/debian");
//   r.oci_layout_path = "out"; r.no_push = true;
//   Progress p;
//   BuildOutcome o = Build(r, p);            // o.exit_code: 0, a failed RUN's code, or 1
//
// Stages run in order (only those the target needs). Each stage starts from its base -- scratch,
// an earlier stage, an image from ImageSources, or else one pulled from its registry (blobs kept
// in --cache-dir/blobs) -- unpacked with the safe extraction rules into
// a root of its own under the work directory; the base's ONBUILD triggers run first. Every
// filesystem step (RUN, COPY, ADD, WORKDIR creating a directory) runs under a Snapshotter and
// becomes one layer (none when it changed nothing: its history entry is then empty_layer, as
// BuildKit does); metadata instructions change the config and add empty_layer history. With
// --single-snapshot a stage becomes one layer. Outputs (OCI layout, docker-archive tarball,
// digest files) are written to temporary names and renamed only when complete; pushes to every
// --destination happen after that, and the digest files are written only after they succeeded;
// the work
// directory, overlays and processes are gone when Build returns, on every path.
#ifndef SLIPWAY_EXECUTOR_BUILD_H_
#define SLIPWAY_EXECUTOR_BUILD_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "executor/git_context.h"
#include "executor/image_source.h"
#include "executor/progress.h"
#include "image/registry.h"
#include "snapshot/layer_writer.h"
#include "snapshot/snapshotter.h"

namespace slipway::executor {

struct BuildRequest {
  std::string context = "dir://.";
  std::string context_sub_path;  // "": the whole context
  GitOptions git;                // --git, for git:// contexts
  std::string dockerfile = "Dockerfile";
  std::map<std::string, std::string> build_args;
  std::string target;
  std::map<std::string, std::string> labels;
  std::string platform = "linux/amd64";
  std::vector<std::string> ignore_paths;
  ImageSources sources;
  std::vector<std::string> destinations;
  bool no_push = false;
  std::string tar_path;
  std::string oci_layout_path;
  std::string digest_file;
  std::string image_name_with_digest_file;
  bool reproducible = false;
  bool single_snapshot = false;
  snapshot::Strategy snapshot_mode = snapshot::Strategy::kAuto;
  snapshot::Compression compression = snapshot::Compression::kGzip;
  int compression_level = -1;  // -1: the format's default
  std::string seccomp_profile;  // empty: the default profile; "unconfined": none
  std::map<std::string, std::string> secrets;        // id -> file
  std::map<std::string, std::string> ssh_agents;     // id -> SSH agent socket (--ssh)
  std::map<std::string, std::string> secret_values;  // id -> value (--secret id=X,env=VAR)
  image::RegistryOptions registry;  // pulls of unmapped images, pushes to --destination
  bool cache = false;                // --cache: reuse layers from --cache-repo
  std::string cache_repo;            // a registry repository or oci:PATH
  std::int64_t cache_ttl = 14 * 24 * 3600;  // seconds
  int push_retry = 0;               // --push-retry
  int pull_retry = 0;               // --image-download-retry
  std::string work_dir;                        // where the temporary build directory goes
  std::string cache_dir;                       // RUN --mount=type=cache storage
};

struct BuildOutcome {
  int exit_code = 0;         // 0, a failed RUN's exit code, 1 for other errors
  std::string error;         // the message, when it failed
  std::string digest;        // the manifest digest
  std::uint64_t size = 0;    // config + layers, compressed
  int layers = 0;
};

BuildOutcome Build(const BuildRequest& request, Progress& progress);

// Forwards SIGINT/SIGTERM/SIGHUP to the running step and makes Build stop; call once, early in
// main, before any thread starts.
void InstallSignalForwarding();

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_BUILD_H_
