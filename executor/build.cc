#include "executor/build.h"

#include <archive.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <memory>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "base/in_root.h"
#include "base/path.h"
#include "base/unique_fd.h"
#include "dockerfile/plan.h"
#include "executor/context.h"
#include "executor/copy.h"
#include "executor/fetch.h"
#include "executor/layer_cache.h"
#include "executor/run_step.h"
#include "executor/seccomp.h"
#include "image/digest.h"
#include "image/reference.h"
#include "image/registry.h"
#include "snapshot/extract.h"
#include "snapshot/overlay.h"
#include "userdb/resolve.h"

namespace slipway::executor {
namespace {

using dockerfile::Instruction;
using dockerfile::Kind;
using dockerfile::Stage;

std::atomic<int> g_signal{0};
std::mutex g_proc_mu;
Process* g_proc = nullptr;

void SetRunning(Process* p) {
  std::lock_guard<std::mutex> l(g_proc_mu);
  g_proc = p;
  if (p && g_signal.load()) (void)p->Signal(g_signal.load());
}


double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string JoinWords(const std::vector<std::string>& words) {
  std::string s;
  for (const std::string& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// Removes a directory tree without following symlinks; unmounts nothing (callers unmount first).
void RemoveTree(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  UniqueFd dir(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.valid()) (void)RemoveAllAt(dir.get(), path.substr(slash + 1));
}

// The temporary build directory: removed on every path.
class WorkDir {
 public:
  static Result<std::unique_ptr<WorkDir>> Create(const std::string& base) {
    std::string tmpl = (base.empty() ? "/var/tmp" : base) + "/slipway-build-XXXXXX";
    if (!mkdtemp(tmpl.data())) return ErrnoError("creating a work directory in " + base);
    return std::unique_ptr<WorkDir>(new WorkDir(tmpl));
  }
  ~WorkDir() { RemoveTree(path_); }
  const std::string& path() const { return path_; }

 private:
  explicit WorkDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};


// Decompresses a layer blob into a plain tar, checking its diff id.
Result<void> Decompress(const std::string& blob, const std::string& out, const std::string& diff_id) {
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), blob.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Error("opening the layer " + blob + ": " + archive_error_string(a.get()), EIO);
  }
  archive_entry* e = nullptr;
  if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) {
    return Error("reading the layer " + blob + ": " + archive_error_string(a.get()), EIO);
  }
  UniqueFd fd(open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) return ErrnoError("creating " + out);
  image::Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
    if (n < 0) return Error("decompressing " + blob + ": " + archive_error_string(a.get()), EIO);
    if (n == 0) break;
    h.Update(buf.data(), static_cast<std::size_t>(n));
    if (write(fd.get(), buf.data(), static_cast<std::size_t>(n)) != n) {
      return ErrnoError("writing " + out);
    }
  }
  const std::string got = h.Digest();
  if (got != diff_id) {
    return Error("layer " + blob + " decompresses to " + got + ", not its diff id " + diff_id,
                 EINVAL);
  }
  return Ok{};
}

void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value) {
  for (std::string& e : env) {
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = key + "=" + value;
      return;
    }
  }
  env.push_back(key + "=" + value);
}

bool HasEnv(const std::vector<std::string>& env, const std::string& key) {
  for (const std::string& e : env) {
    if (e.compare(0, key.size() + 1, key + "=") == 0) return true;
  }
  return false;
}

dockerfile::Env EnvMap(const std::vector<std::string>& env) {
  dockerfile::Env m;
  for (const std::string& e : env) {
    const std::size_t eq = e.find('=');
    if (eq != std::string::npos) m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return m;
}


// An output directory may be replaced when it is an OCI layout or an empty directory.
Result<void> CheckReplaceable(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return Ok{};
  if (S_ISDIR(st.st_mode)) {
    if (access((path + "/oci-layout").c_str(), F_OK) == 0) return Ok{};
    UniqueFd d(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.valid()) {
      auto names = ListDirectory(d.get());
      if (names.ok() && names->empty()) return Ok{};
    }
  }
  return Error("--oci-layout-path " + path + " exists and is not an OCI layout: not replacing it",
               EEXIST);
}

// A digest of a tree's names, types, modes, owners, sizes, link targets and contents (not times).
Result<void> HashTree(int dir, const std::string& rel, image::Sha256& h) {
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDirectory(dir));
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    const std::string path = rel.empty() ? n : rel + "/" + n;
    struct stat st;
    if (fstatat(dir, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoError("stat " + path);
    std::string line = path + "\t" + std::to_string(st.st_mode) + "\t" + std::to_string(st.st_uid) +
                       ":" + std::to_string(st.st_gid) + "\t" + std::to_string(st.st_size);
    if (S_ISREG(st.st_mode)) {
      UniqueFd fd(openat(dir, n.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) return ErrnoError("reading " + path);
      image::Sha256 c;
      std::vector<char> buf(1 << 16);
      for (ssize_t k; (k = read(fd.get(), buf.data(), buf.size())) > 0;) {
        c.Update(buf.data(), static_cast<std::size_t>(k));
      }
      line += "\t" + c.Digest();
    } else if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX + 1];
      const ssize_t k = readlinkat(dir, n.c_str(), target, PATH_MAX);
      if (k >= 0) line += "\t" + std::string(target, static_cast<std::size_t>(k));
    }
    h.Update(line + "\n");
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return ErrnoError("opening " + path);
      SLIPWAY_RETURN_IF_ERROR(HashTree(sub.get(), path, h));
    }
  }
  return Ok{};
}

struct StageState {
  image::ImageConfig config;
  std::vector<Layer> layers;
  std::string rootfs;  // where the stage's files are read (in layered mode, a read-only view)
  // Layered mode: the stage's own overlay-format upper directory first, then read-only lowers
  // (a cached unpacked base, parent stages). Empty in plain mode (rootfs is a directory).
  std::vector<std::string> lowers;
  std::optional<snapshot::OverlayView> view;
  dockerfile::Env args;  // ARG values in effect
  bool cmd_set = false;
  std::string cache_key;  // the chain of everything the stage's files came from so far
  snapshot::WalkMemo walk_memo;  // plain mode, walk strategy: the tree as the last step left it
};

class Builder {
 public:
  Builder(const BuildRequest& r, Progress& p) : r_(r), progress_(p) {}

  // Returns the exit code; `error_` holds the message.
  int Run(BuildOutcome* out);

 private:
  Result<void> Prepare();
  Result<void> BuildStage(int index);
  Result<void> Execute(const Stage& s, StageState& st, int index, int step);
  // `cache_material`: everything the step depends on, for the layer cache ("" = not cached).
  Result<void> FsStep(StageState& st, const std::string& cache_material, const std::string& created_by,
                      int step,
                      const std::function<Result<std::vector<TouchedDir>>(const std::string&)>& body);
  Result<void> DoRun(const Stage& s, StageState& st, int index, int step);
  Result<void> DoCopy(const Stage& s, StageState& st, int index, int step);
  Result<void> DoWorkdir(StageState& st, const Instruction& ins, int step);
  Result<std::string> SourceRoot(const dockerfile::SourceRef& ref);
  // A mapped image (ImageSources), or else one pulled from its registry.
  Result<BaseImage> LoadImage(const std::string& ref, const image::Platform& platform,
                              const std::string& dir);
  Result<void> Push(const StageState& st, const std::string& config_bytes,
                    const std::string& manifest_bytes, int step);
  Result<void> Export(StageState& st);
  Result<void> ExtractInto(const std::string& rootfs, const std::vector<Layer>& layers);
  // An unpacked image, kept in --cache-dir/base by layer digests (made once, read-only after).
  Result<std::string> BaseRoot(const std::vector<Layer>& layers, bool* cached);
  Result<std::unique_ptr<snapshot::Snapshotter>> StartStep(StageState& st);
  Result<void> ApplyCached(StageState& st, const CacheEntry& e, const std::string& created_by,
                           int step);
  void StoreInCache(const std::string& key, const CacheEntry& entry);
  Result<void> Compress(Layer& l);
  snapshot::LayerOptions LayerOpts() const;
  Result<void> Committed(StageState& st);
  std::string NewScratch();
  void History(StageState& st, const std::string& created_by, bool empty);
  std::string Label(const Stage& s, int i) const;
  std::optional<std::int64_t> Epoch() const;
  image::Platform PlatformOf(const Stage& s) const {
    return ParsePlatform(s.platform.empty() ? r_.platform : s.platform);
  }

  const BuildRequest& r_;
  Progress& progress_;
  std::unique_ptr<WorkDir> work_;
  BuildContext ctx_;
  dockerfile::Plan plan_;
  std::map<std::string, BaseImage> bases_;       // by reference as written
  std::map<std::string, std::string> image_roots_;  // COPY --from=<image>: unpacked roots
  std::vector<StageState> states_;
  std::optional<SeccompProgram> seccomp_;
  std::map<std::string, std::string> secrets_;  // id -> file
  std::vector<image::Reference> destinations_;
  std::unique_ptr<LayerCache> cache_;
  int blob_count_ = 0;
  std::unique_ptr<snapshot::Snapshotter> whole_;  // --single-snapshot
  int scratch_count_ = 0;
  int layer_count_ = 0;
  int exit_code_ = 1;
  bool layered_ = false;  // stages live as overlay uppers over cached bases
  std::string now_;
  BuildOutcome* out_ = nullptr;
};

std::optional<std::int64_t> Builder::Epoch() const {
  if (plan_.source_date_epoch) return plan_.source_date_epoch;
  if (const char* e = getenv("SOURCE_DATE_EPOCH"); e && *e) {
    char* end = nullptr;
    const long long v = std::strtoll(e, &end, 10);
    if (end && *end == '\0' && v >= 0) return v;
  }
  if (r_.reproducible) return 0;
  return std::nullopt;
}

std::string Builder::NewScratch() {
  const std::string p = work_->path() + "/scratch-" + std::to_string(scratch_count_++);
  mkdir(p.c_str(), 0700);
  return p;
}

std::string Builder::Label(const Stage& s, int i) const {
  const std::string n = std::to_string(i + 1) + "/" + std::to_string(s.instructions.size());
  if (s.index == plan_.target && s.name.empty()) return "[" + n + "]";
  return "[" + (s.name.empty() ? "stage-" + std::to_string(s.index) : s.name) + " " + n + "]";
}

void Builder::History(StageState& st, const std::string& created_by, bool empty) {
  image::HistoryEntry h;
  h.created = now_;
  h.created_by = created_by;
  h.comment = "buildkit.dockerfile.v0";
  h.empty_layer = empty;
  st.config.history.push_back(std::move(h));
}

Result<void> Builder::Prepare() {
  if (!r_.oci_layout_path.empty()) SLIPWAY_RETURN_IF_ERROR(CheckReplaceable(r_.oci_layout_path));
  for (const std::string& d : r_.destinations) {
    auto ref = image::ParseReference(d);
    if (!ref.ok()) return std::move(ref.error().AddContext("--destination"));
    destinations_.push_back(*ref);
  }
  SLIPWAY_ASSIGN_OR_RETURN(work_, WorkDir::Create(r_.work_dir));
  if (r_.cache) {
    std::string repo = r_.cache_repo;
    if (repo.empty() && !destinations_.empty()) {
      repo = destinations_.front().registry + "/" + destinations_.front().repository + "/cache";
    }
    if (repo.empty()) {
      return Error("--cache needs --cache-repo (a registry repository or oci:PATH) or a "
                   "--destination to derive it from",
                   EINVAL);
    }
    image::RegistryOptions o = r_.registry;
    o.retries = r_.push_retry;
    o.log = [this](const std::string& line) { progress_.Message(Verbosity::kDebug, line); };
    const std::string blobs = r_.cache_dir.empty() ? work_->path() + "/cache-blobs"
                                                   : r_.cache_dir + "/blobs";
    if (!r_.cache_dir.empty() && mkdir(r_.cache_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError("creating " + r_.cache_dir);
    }
    auto opened = OpenLayerCache(repo, o, r_.cache_ttl, blobs);
    if (opened.ok()) {
      cache_ = std::move(opened).value();
      progress_.Message(Verbosity::kDebug, "layer cache: " + repo);
    } else {
      // The cache is an optimisation: without it the build still runs.
      progress_.Message(Verbosity::kWarn,
                        "layer cache " + repo + " is not usable, building without it: " +
                            opened.error().ToString());
    }
  }
  SLIPWAY_ASSIGN_OR_RETURN(ctx_, OpenContext(r_.context, r_.dockerfile, work_->path(),
                                       ContextOptions{r_.context_sub_path, r_.git}));
  secrets_ = r_.secrets;
  for (const auto& [id, value] : r_.secret_values) {
    const std::string file = work_->path() + "/secret-" + std::to_string(secrets_.size());
    SLIPWAY_RETURN_IF_ERROR(WriteFileAtomic(file, value, 0600));
    secrets_[id] = file;
  }
  if (r_.seccomp_profile != "unconfined") {
    if (r_.seccomp_profile.empty()) {
      SLIPWAY_ASSIGN_OR_RETURN(seccomp_, SeccompProgram::Default());
    } else {
      SLIPWAY_ASSIGN_OR_RETURN(seccomp_, SeccompProgram::FromProfileFile(r_.seccomp_profile));
    }
  }
  dockerfile::BuildOptions opts;
  opts.build_args = r_.build_args;
  opts.target = r_.target;
  opts.target_platform = r_.platform;
  // First pass: which images the needed stages start from.
  SLIPWAY_ASSIGN_OR_RETURN(dockerfile::Plan first,
                           dockerfile::PlanDockerfile(ctx_.dockerfile_text, ctx_.dockerfile_name, opts));
  const int step = progress_.Start("[internal] load base images");
  int n = 0;
  for (int i : first.needed) {
    const Stage& s = first.stages[i];
    if (s.base_stage >= 0 || s.scratch || bases_.count(s.base)) continue;
    const std::string dir = work_->path() + "/base-" + std::to_string(n++);
    mkdir(dir.c_str(), 0700);
    auto img = LoadImage(s.base, PlatformOf(s), dir);
    if (!img.ok()) {
      progress_.Failed(step, img.error().ToString());
      return std::move(img.error().AddContext(s.at.ToString() + ": FROM " + s.base));
    }
    progress_.Message(Verbosity::kDebug, "image " + s.base + " from " + img->source + ": " +
                                             std::to_string(img->layers.size()) + " layers");
    bases_[s.base] = std::move(img).value();
  }
  progress_.Done(step);
  opts.image_env = [this](const std::string& ref) {
    auto it = bases_.find(ref);
    return it == bases_.end() ? dockerfile::Env{} : EnvMap(it->second.config.env);
  };
  opts.image_onbuild = [this](const std::string& ref) {
    auto it = bases_.find(ref);
    return it == bases_.end() ? std::vector<std::string>{} : it->second.config.on_build;
  };
  SLIPWAY_ASSIGN_OR_RETURN(plan_,
                           dockerfile::PlanDockerfile(ctx_.dockerfile_text, ctx_.dockerfile_name, opts));
  for (const dockerfile::Warning& w : plan_.warnings) {
    progress_.Message(Verbosity::kWarn, w.ToString());
  }
  states_.resize(plan_.stages.size());
  if (r_.snapshot_mode != snapshot::Strategy::kWalk) {
    // Can this process mount overlays? Then stages are uppers over cached, shared bases.
    const std::string probe = work_->path() + "/probe";
    for (const char* d : {"", "/a", "/b", "/v"}) mkdir((probe + d).c_str(), 0700);
    auto v = snapshot::OverlayView::Mount({probe + "/a", probe + "/b"}, probe + "/v");
    layered_ = v.ok();
    if (!v.ok()) {
      if (r_.snapshot_mode == snapshot::Strategy::kOverlay) return std::move(v).error();
      progress_.Message(Verbosity::kDebug,
                        "overlayfs is not available (" + v.error().ToString() +
                            "): stages are plain directories, snapshots use the metadata walk");
    }
  }
  const auto epoch = Epoch();
  now_ = image::Rfc3339(epoch ? *epoch : static_cast<std::int64_t>(std::time(nullptr)));
  return Ok{};
}

Result<void> Builder::ExtractInto(const std::string& rootfs, const std::vector<Layer>& layers) {
  UniqueFd root(open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError("opening " + rootfs);
  snapshot::ExtractOptions o;
  o.allow_devices = geteuid() == 0;
  for (const Layer& l : layers) {
    // Decompressed on a second thread, and the blob hashed on the way: verified as it is read.
    const bool blob = l.tar_path.empty() || l.tar_path == l.blob_path;
    const std::string& file = blob ? l.blob_path : l.tar_path;
    std::string digest;
    auto st = snapshot::ExtractLayerFile(root.get(), file, l.diff_id, o, &digest);
    if (!st.ok()) return std::move(st).error();
    if (blob && !l.digest.empty() && digest != l.digest) {
      return Error("layer blob " + l.blob_path + " has digest " + digest + ", not the " +
                       l.digest + " its manifest names",
                   EINVAL);
    }
    for (const std::string& w : st->warnings) {
      progress_.Message(Verbosity::kDebug, "layer " + l.diff_id + ": " + w);
    }
  }
  return Ok{};
}

Result<std::string> Builder::BaseRoot(const std::vector<Layer>& layers, bool* cached) {
  *cached = false;
  std::string key;
  for (const Layer& l : layers) key += l.digest + " " + l.diff_id + "\n";
  const std::string id = image::Sha256Digest(key).substr(7);
  if (r_.cache_dir.empty()) {
    const std::string dir = work_->path() + "/base-" + id.substr(0, 16);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError("creating " + dir);
    if (errno != EEXIST) SLIPWAY_RETURN_IF_ERROR(ExtractInto(dir, layers));
    return dir;
  }
  const std::string base = r_.cache_dir + "/base";
  const std::string final_dir = base + "/" + id;
  if (access((final_dir + "/rootfs").c_str(), F_OK) == 0) {
    *cached = true;
    return final_dir + "/rootfs";
  }
  for (const std::string& d : {r_.cache_dir, base}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("creating " + d);
  }
  std::string tmp = base + "/.tmp-XXXXXX";
  if (!mkdtemp(tmp.data())) return ErrnoError("creating a directory in " + base);
  auto made = [&]() -> Result<void> {
    if (mkdir((tmp + "/rootfs").c_str(), 0755) != 0) return ErrnoError("creating " + tmp);
    return ExtractInto(tmp + "/rootfs", layers);
  }();
  if (!made.ok()) {
    RemoveTree(tmp);
    return std::move(made).error();
  }
  // Published whole, or not at all; another build may have been quicker.
  if (rename(tmp.c_str(), final_dir.c_str()) != 0) {
    const int e = errno;
    RemoveTree(tmp);
    if (e != EEXIST && e != ENOTEMPTY) return ErrnoError("storing the unpacked base in " + final_dir, e);
  }
  return final_dir + "/rootfs";
}

Result<std::unique_ptr<snapshot::Snapshotter>> Builder::StartStep(StageState& st) {
  if (!st.lowers.empty()) return snapshot::StartLayeredSnapshot(st.lowers, NewScratch());
  return snapshot::StartSnapshot(st.rootfs, NewScratch(), r_.snapshot_mode, &st.walk_memo);
}

Result<void> Builder::Committed(StageState& st) {
  if (st.view) return st.view->Refresh();
  return Ok{};
}

Result<BaseImage> Builder::LoadImage(const std::string& ref, const image::Platform& platform,
                                     const std::string& dir) {
  if (r_.sources.Has(ref)) return r_.sources.Load(ref, platform, dir);
  auto parsed = image::ParseReference(ref);
  if (!parsed.ok()) return std::move(parsed).error();
  image::RegistryOptions o = r_.registry;
  o.retries = r_.pull_retry;
  o.log = [this](const std::string& line) { progress_.Message(Verbosity::kDebug, line); };
  image::Registry registry(o);
  const std::string blobs = r_.cache_dir.empty() ? dir + "/blobs" : r_.cache_dir + "/blobs";
  if (!r_.cache_dir.empty() && mkdir(r_.cache_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError("creating " + r_.cache_dir);
  }
  auto pulled = registry.Pull(*parsed, platform, blobs);
  if (!pulled.ok()) {
    Error e = std::move(pulled).error();
    e.SetHint("or map the image to a local copy with --image-source " + ref +
              "=oci-layout:PATH[:TAG]");
    return e;
  }
  BaseImage img;
  img.reference = ref;
  img.source = "registry " + parsed->ToString() + "@" + pulled->manifest_digest;
  img.config = pulled->config;
  for (std::size_t i = 0; i < pulled->layers.size(); ++i) {
    const auto& b = pulled->layers[i];
    Layer l;
    l.diff_id = img.config.diff_ids[i];
    l.blob_path = b.path;
    l.digest = b.digest;
    l.media_type = b.media_type;
    l.size = b.size;
    if (b.media_type == image::kMediaTypeLayer) l.tar_path = b.path;
    l.origin_registry = parsed->registry;
    l.origin_repository = parsed->repository;
    img.layers.push_back(std::move(l));
  }
  return img;
}

Result<void> Builder::Push(const StageState& st, const std::string& config_bytes,
                           const std::string& manifest_bytes, int step) {
  const std::string config_file = work_->path() + "/config.json";
  SLIPWAY_RETURN_IF_ERROR(WriteFileAtomic(config_file, config_bytes));
  image::RegistryOptions o = r_.registry;
  o.retries = r_.push_retry;
  o.log = [this](const std::string& line) { progress_.Message(Verbosity::kDebug, line); };
  for (const image::Reference& dest : destinations_) {
    std::vector<image::PushBlob> blobs;
    for (const Layer& l : st.layers) {
      image::PushBlob b{l.digest, l.media_type, l.blob_path, l.size, ""};
      if (l.origin_registry == dest.registry) b.mount_from = l.origin_repository;
      blobs.push_back(std::move(b));
    }
    blobs.push_back({image::Sha256Digest(config_bytes), image::kMediaTypeConfig, config_file,
                     static_cast<std::int64_t>(config_bytes.size()), ""});
    image::Registry registry(o);
    auto pushed = registry.Push(dest, blobs, manifest_bytes, image::kMediaTypeManifest);
    if (!pushed.ok()) return std::move(pushed).error();
    const auto& s = registry.stats();
    progress_.Output(step, "pushed " + dest.ToString() + "@" + *pushed + " (" +
                               std::to_string(s.blobs_uploaded) + " blobs uploaded, " +
                               std::to_string(s.blobs_mounted) + " mounted, " +
                               std::to_string(s.blobs_skipped) + " already there)");
  }
  return Ok{};
}

Result<std::string> Builder::SourceRoot(const dockerfile::SourceRef& ref) {
  if (ref.stage >= 0) return states_[ref.stage].rootfs;
  auto it = image_roots_.find(ref.image);
  if (it != image_roots_.end()) return it->second;
  const std::string dir = work_->path() + "/image-" + std::to_string(image_roots_.size());
  mkdir(dir.c_str(), 0700);
  SLIPWAY_ASSIGN_OR_RETURN(BaseImage img, LoadImage(ref.image, ParsePlatform(r_.platform), dir));
  bool cached = false;
  SLIPWAY_ASSIGN_OR_RETURN(std::string root, BaseRoot(img.layers, &cached));
  image_roots_[ref.image] = root;
  return root;
}

Result<void> Builder::BuildStage(int index) {
  const Stage& s = plan_.stages[index];
  StageState& st = states_[index];
  const std::string dir = work_->path() + "/stage-" + std::to_string(index);
  st.rootfs = dir + "/rootfs";
  if (mkdir(dir.c_str(), 0700) != 0 || mkdir(st.rootfs.c_str(), 0755) != 0) {
    return ErrnoError("creating " + st.rootfs);
  }
  const int from_step = progress_.Start(Label(s, 0) + " FROM " + s.base +
                                        (s.name.empty() ? "" : " AS " + s.name));
  bool from_cache = false;
  auto from = [&]() -> Result<void> {
    if (s.base_stage >= 0) {
      const StageState& parent = states_[s.base_stage];
      st.config = parent.config;
      st.layers = parent.layers;
      st.args = parent.args;
    } else if (s.scratch) {
      st.config = image::ImageConfig{};
    } else {
      const BaseImage& img = bases_.at(s.base);
      st.config = img.config;
      st.layers = img.layers;
    }
    if (!layered_) {
      SLIPWAY_RETURN_IF_ERROR(ExtractInto(st.rootfs, st.layers));
    } else {
      // The stage is an empty upper directory over read-only lowers: the parent stage's, or
      // the base image unpacked once into the cache (shared by every build).
      const std::string upper = dir + "/upper";
      if (mkdir(upper.c_str(), 0755) != 0) return ErrnoError("creating " + upper);
      st.lowers = {upper};
      if (s.base_stage >= 0) {
        const StageState& parent = states_[s.base_stage];
        st.lowers.insert(st.lowers.end(), parent.lowers.begin(), parent.lowers.end());
      } else {
        std::string root = work_->path() + "/empty";
        if (!s.scratch) {
          SLIPWAY_ASSIGN_OR_RETURN(root, BaseRoot(st.layers, &from_cache));
        } else if (mkdir(root.c_str(), 0755) != 0 && errno != EEXIST) {
          return ErrnoError("creating " + root);
        }
        st.lowers.push_back(root);
      }
      struct stat below;
      if (stat(st.lowers[1].c_str(), &below) != 0 ||
          chown(upper.c_str(), below.st_uid, below.st_gid) != 0 ||
          chmod(upper.c_str(), below.st_mode & 07777) != 0) {
        return ErrnoError("giving " + upper + " the root's owner and mode");
      }
      SLIPWAY_ASSIGN_OR_RETURN(st.view, snapshot::OverlayView::Mount(st.lowers, st.rootfs));
    }
    const image::Platform p = PlatformOf(s);
    st.config.os = p.os;
    st.config.architecture = p.architecture;
    st.config.variant = p.variant;
    st.config.on_build.clear();  // triggers run once, in this stage (the plan spliced them in)
    if (s.base_stage >= 0) {
      st.cache_key = states_[s.base_stage].cache_key;
    } else {
      std::string chain = s.scratch ? "scratch" : "image";
      for (const Layer& l : st.layers) chain += "\n" + l.digest + " " + l.diff_id;
      st.cache_key = image::Sha256Digest(chain + "\n" + PlatformOf(s).os + "/" +
                                         PlatformOf(s).architecture);
    }
    if (!HasEnv(st.config.env, "PATH")) {
      st.config.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    return Ok{};
  };
  const auto unpack_start = std::chrono::steady_clock::now();
  if (auto r = from(); !r.ok()) {
    progress_.Failed(from_step, r.error().ToString());
    return std::move(r.error().AddContext(s.at.ToString() + ": FROM " + s.base));
  }
  progress_.Timing(from_step, {{"unpack", Since(unpack_start)}});
  progress_.Done(from_step, from_cache ? "base unpacked in the cache" : "");
  if (r_.single_snapshot) {
    SLIPWAY_ASSIGN_OR_RETURN(whole_, StartStep(st));
  }
  for (std::size_t i = 1; i < s.instructions.size(); ++i) {
    if (g_signal.load()) {
      return Error("interrupted by signal " + std::to_string(g_signal.load()), EINTR);
    }
    const Instruction& ins = s.instructions[i];
    std::string name = Label(s, static_cast<int>(i)) + " " + RedactUrlCredentials(ins.original);
    if (!ins.onbuild_of.empty()) name += " (" + ins.onbuild_of + ")";
    const int step = progress_.Start(name);
    auto r = Execute(s, st, static_cast<int>(i), step);
    if (!r.ok()) {
      progress_.Failed(step, r.error().ToString());
      whole_.reset();
      std::string what = RedactUrlCredentials(ins.original);
      if (what.size() > 80) what = what.substr(0, 77) + "...";
      return std::move(r.error().AddContext(ins.at.ToString() + ": " + what));
    }
  }
  if (whole_) {
    const int step = progress_.Start(Label(s, static_cast<int>(s.instructions.size()) - 1) +
                                     " single snapshot");
    auto changes = whole_->Changes();
    if (!changes.ok()) return std::move(changes).error();
    const std::string tar = work_->path() + "/layer-" + std::to_string(layer_count_++) + ".tar";
    UniqueFd out(open(tar.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    UniqueFd root(open(whole_->root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    snapshot::LayerOptions lo;
    lo.compression = snapshot::Compression::kNone;
    lo.clamp_mtime = Epoch();
    SLIPWAY_ASSIGN_OR_RETURN(snapshot::LayerBlob blob, snapshot::WriteLayer(root.get(), *changes, out.get(), lo));
    SLIPWAY_RETURN_IF_ERROR(whole_->Commit(tar));
    whole_.reset();
    SLIPWAY_RETURN_IF_ERROR(Committed(st));
    if (!changes->empty()) {
      Layer l;
      l.diff_id = blob.diff_id;
      l.tar_path = tar;
      st.layers.push_back(l);
      History(st, "slipway: single snapshot of the stage", false);
    }
    progress_.Done(step);
  }
  return Ok{};
}

Result<void> Builder::FsStep(
    StageState& st, const std::string& cache_material, const std::string& created_by, int step,
    const std::function<Result<std::vector<TouchedDir>>(const std::string&)>& body) {
  std::string key;
  if (cache_ && !whole_ && !cache_material.empty()) {
    key = image::Sha256Digest(st.cache_key + "\n" + cache_material);
    auto hit = cache_->Lookup(key);
    if (!hit.ok()) {
      progress_.Message(Verbosity::kWarn, "layer cache: ignoring the entry for this step: " +
                                              hit.error().ToString());
    } else if (*hit) {
      SLIPWAY_RETURN_IF_ERROR(ApplyCached(st, **hit, created_by, step));
      st.cache_key = key;
      return Ok{};
    }
  }
  if (whole_) {
    auto done = body(whole_->root());
    if (!done.ok()) return std::move(done).error();
    History(st, created_by, true);
    progress_.Done(step, "single snapshot");
    return Ok{};
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::unique_ptr<snapshot::Snapshotter> snap, StartStep(st));
  progress_.Message(Verbosity::kDebug,
                    std::string("snapshot: ") +
                        (snap->strategy() == snapshot::Strategy::kOverlay ? "overlay" : "walk"));
  auto t = std::chrono::steady_clock::now();
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<TouchedDir> touched, body(snap->root()));
  const double run_s = Since(t);
  t = std::chrono::steady_clock::now();
  SLIPWAY_ASSIGN_OR_RETURN(std::vector<snapshot::LayerEntry> changes, snap->Changes());
  UniqueFd root(open(snap->root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError("opening " + snap->root());
  // Leave out --ignore-path and the directories that only held our mount points.
  std::vector<std::string> ignored;
  for (const std::string& p : r_.ignore_paths) {
    const std::string c = CleanPath("/" + p);
    if (c != "/") ignored.push_back(c.substr(1));
  }
  auto under = [](const std::string& path, const std::string& dir) {
    return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                           path[dir.size()] == '/');
  };
  std::vector<snapshot::LayerEntry> kept;
  for (const snapshot::LayerEntry& e : changes) {
    bool drop = std::any_of(ignored.begin(), ignored.end(),
                            [&](const std::string& d) { return under(e.path, d); });
    for (const TouchedDir& t : touched) {
      if (drop || t.path.empty() || e.kind != snapshot::LayerEntry::kPath || e.path != t.path) continue;
      const bool others = std::any_of(changes.begin(), changes.end(), [&](const auto& o) {
        return o.path != t.path && under(o.path, t.path);
      });
      struct stat now;
      if (!others && fstatat(root.get(), t.path.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
          now.st_mode == t.before.st_mode && now.st_uid == t.before.st_uid &&
          now.st_gid == t.before.st_gid) {
        drop = true;
      }
    }
    if (!drop) kept.push_back(e);
  }
  const double snapshot_s = Since(t);
  t = std::chrono::steady_clock::now();
  const std::string tar = work_->path() + "/layer-" + std::to_string(layer_count_++) + ".tar";
  UniqueFd out(open(tar.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out.valid()) return ErrnoError("creating " + tar);
  snapshot::LayerOptions lo;
  lo.compression = snapshot::Compression::kNone;
  lo.clamp_mtime = Epoch();
  SLIPWAY_ASSIGN_OR_RETURN(snapshot::LayerBlob blob, snapshot::WriteLayer(root.get(), kept, out.get(), lo));
  out.Reset();
  root.Reset();
  const double layer_s = Since(t);
  t = std::chrono::steady_clock::now();
  SLIPWAY_RETURN_IF_ERROR(snap->Commit(tar));
  snap.reset();
  SLIPWAY_RETURN_IF_ERROR(Committed(st));
  progress_.Timing(step, {{"run", run_s}, {"snapshot", snapshot_s}, {"layer", layer_s},
                          {"commit", Since(t)}});
  if (!key.empty()) st.cache_key = key;
  if (kept.empty()) {
    unlink(tar.c_str());
    History(st, created_by, true);
    if (!key.empty()) StoreInCache(key, CacheEntry{true, {}});
    progress_.Done(step, "no changes: empty layer");
    return Ok{};
  }
  Layer l;
  l.diff_id = blob.diff_id;
  l.tar_path = tar;
  if (!key.empty()) {
    // Compressed now (not at export) so that the cache holds the very blob the image will.
    SLIPWAY_RETURN_IF_ERROR(Compress(l));
    StoreInCache(key, CacheEntry{false, l});
  }
  st.layers.push_back(l);
  History(st, created_by, false);
  progress_.Done(step, std::to_string(kept.size()) + " entries");
  return Ok{};
}

Result<void> Builder::Compress(Layer& l) {
  l.blob_path = work_->path() + "/cblob-" + std::to_string(blob_count_++);
  UniqueFd in(open(l.tar_path.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd out(open(l.blob_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!in.valid() || !out.valid()) return ErrnoError("compressing layer " + l.diff_id);
  SLIPWAY_ASSIGN_OR_RETURN(snapshot::LayerBlob b, snapshot::CompressLayer(in.get(), out.get(), LayerOpts()));
  l.digest = b.digest;
  l.size = static_cast<std::int64_t>(b.size);
  l.media_type = r_.compression == snapshot::Compression::kZstd ? image::kMediaTypeLayerZstd
                 : r_.compression == snapshot::Compression::kGzip ? image::kMediaTypeLayerGzip
                                                                 : image::kMediaTypeLayer;
  return Ok{};
}

snapshot::LayerOptions Builder::LayerOpts() const {
  snapshot::LayerOptions lo;
  lo.compression = r_.compression;
  if (r_.compression_level > 0) {
    lo.level = r_.compression_level;
  } else {
    lo.level = r_.compression == snapshot::Compression::kZstd ? 3 : 6;
  }
  return lo;
}

void Builder::StoreInCache(const std::string& key, const CacheEntry& entry) {
  // A cache that cannot be written never fails the build.
  auto stored = cache_->Store(key, entry);
  if (!stored.ok()) {
    progress_.Message(Verbosity::kWarn, "layer cache: could not store " + CacheTag(key) + ": " +
                                            stored.error().ToString());
  }
}

Result<void> Builder::ApplyCached(StageState& st, const CacheEntry& e, const std::string& created_by,
                                  int step) {
  if (e.empty) {
    History(st, created_by, true);
    progress_.Done(step, "CACHED, empty layer");
    return Ok{};
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::unique_ptr<snapshot::Snapshotter> snap, StartStep(st));
  {
    UniqueFd root(open(snap->root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) return ErrnoError("opening " + snap->root());
    snapshot::ExtractOptions o;
    o.allow_devices = geteuid() == 0;
    std::string digest;
    auto x = snapshot::ExtractLayerFile(root.get(), e.layer.blob_path, e.layer.diff_id, o, &digest);
    if (!x.ok()) return std::move(x.error().AddContext("applying a cached layer"));
    if (digest != e.layer.digest) return Error("a cached layer changed while it was applied", EIO);
  }
  SLIPWAY_RETURN_IF_ERROR(snap->Commit(e.layer.blob_path));
  snap.reset();
  SLIPWAY_RETURN_IF_ERROR(Committed(st));
  Layer l = e.layer;
  l.tar_path.clear();
  st.layers.push_back(l);
  History(st, created_by, false);
  progress_.Done(step, "CACHED");
  return Ok{};
}

Result<void> Builder::DoRun(const Stage& s, StageState& st, int index, int step) {
  const Instruction& ins = s.instructions[index];
  if (ins.security == "insecure") {
    return Error("RUN --security=insecure is not supported: steps always run sandboxed", ENOTSUP);
  }
  if (ins.network == "host") {
    progress_.Message(Verbosity::kDebug, "--network=host: the step shares the host's network");
  }
  RunRequest rr;
  const std::vector<std::string> shell =
      st.config.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : st.config.shell;
  const dockerfile::RunHeredoc hd = dockerfile::ClassifyRunHeredoc(ins);
  std::string created_by;
  if (hd.kind == dockerfile::RunHeredocKind::kScript) {
    rr.script = hd.text;
    created_by = "RUN " + ins.original;
  } else if (hd.kind != dockerfile::RunHeredocKind::kNone) {
    rr.argv = shell;
    rr.argv.push_back(hd.text);
    created_by = "RUN " + JoinWords(shell) + " " + hd.text;
  } else if (ins.command.exec_form) {
    rr.argv = ins.command.exec;
    created_by = "RUN " + JoinWords(ins.command.exec);
  } else {
    rr.argv = shell;
    rr.argv.push_back(ins.command.shell);
    created_by = "RUN " + JoinWords(shell) + " " + ins.command.shell;
  }
  if (!rr.script.empty() || !rr.argv.empty()) created_by += " # buildkit";
  if (rr.script.empty() && rr.argv.empty()) return Error("RUN has no command", EINVAL);
  rr.env = st.config.env;
  for (const auto& [k, v] : st.args) {
    if (!HasEnv(rr.env, k)) rr.env.push_back(k + "=" + v);
  }
  for (const auto& [k, v] : r_.build_args) {
    if (dockerfile::IsProxyArg(k) && !HasEnv(rr.env, k)) rr.env.push_back(k + "=" + v);
  }
  rr.user = st.config.user;
  rr.workdir = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  rr.network = ins.network;
  rr.mounts = ins.mounts;
  rr.mount_roots[""] = ctx_.root;
  auto refs = s.mount_sources.find(index);
  std::size_t k = 0;
  for (const dockerfile::Mount& m : ins.mounts) {
    if (m.from.empty()) continue;
    if (refs == s.mount_sources.end() || k >= refs->second.size()) {
      return Error("RUN --mount from=" + m.from + ": unresolved", EINVAL);
    }
    SLIPWAY_ASSIGN_OR_RETURN(rr.mount_roots[m.from], SourceRoot(refs->second[k++]));
  }
  rr.secrets = secrets_;
  rr.ssh_agents = r_.ssh_agents;
  rr.cache_dir = r_.cache_dir;
  rr.seccomp = seccomp_ ? &*seccomp_ : nullptr;
  rr.output = [this, step](std::string_view line) { progress_.Output(step, line); };
  rr.on_process = SetRunning;
  std::string material;
  if (cache_) {
    nlohmann::json m;
    m["run"] = rr.argv;
    m["script"] = rr.script;
    std::vector<std::string> env = rr.env;
    std::sort(env.begin(), env.end());
    m["env"] = env;
    m["user"] = rr.user;
    m["workdir"] = rr.workdir;
    m["network"] = rr.network;
    std::vector<std::string> mounts;
    for (const auto& mt : rr.mounts) mounts.push_back(mt.ToString());
    m["mounts"] = mounts;
    material = m.dump();
  }
  return FsStep(st, material, created_by, step, [&](const std::string& root) -> Result<std::vector<TouchedDir>> {
    rr.root = root;
    rr.scratch = NewScratch();
    SLIPWAY_ASSIGN_OR_RETURN(RunOutcome o, RunStep(rr));
    for (const std::string& w : o.warnings) progress_.Message(Verbosity::kWarn, w);
    if (o.status.code != 0 || o.status.signal != 0) {
      exit_code_ = o.status.ShellStatus();
      return Error("the command " +
                       (rr.script.empty() ? "[" + JoinWords(rr.argv) + "]" : std::string("(heredoc script)")) +
                       " failed: " + o.status.ToString(),
                   0);
    }
    return std::move(o.touched);
  });
}

Result<void> Builder::DoCopy(const Stage& s, StageState& st, int index, int step) {
  const Instruction& ins = s.instructions[index];
  const dockerfile::CopySpec& c = ins.copy;
  const bool add = ins.kind == Kind::kAdd;
  const std::string workdir = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  std::string dest = c.dest.empty() ? "." : c.dest;
  const bool trailing = dest.back() == '/' || dest == "." || dest == "..";
  dest = CleanPath(dest[0] == '/' ? dest : workdir + "/" + dest);
  if (trailing && dest != "/") dest += "/";
  std::string src_root = ctx_.root;
  const bool from_context = c.from.empty();
  if (!from_context) {
    auto ref = s.sources.find(index);
    if (ref == s.sources.end()) return Error("--from=" + c.from + ": unresolved", EINVAL);
    SLIPWAY_ASSIGN_OR_RETURN(src_root, SourceRoot(ref->second));
  }
  std::vector<std::string> local, urls, gits;
  std::vector<InlineFile> inline_files;
  for (const std::string& src : c.sources) {
    if (src.rfind("<<", 0) == 0 && !ins.heredocs.empty()) {
      const std::string name = src.substr(2);
      for (const auto& h : ins.heredocs) {
        if (h.name == name) inline_files.push_back({name, h.content});
      }
      continue;
    }
    if (add && IsGitUrl(src)) {
      SLIPWAY_RETURN_IF_ERROR(ParseGitAddSource(src));  // a bad one fails before anything runs
      gits.push_back(src);
      continue;
    }
    if (add && IsHttpUrl(src)) {
      urls.push_back(src);
      continue;
    }
    if (!add && (IsHttpUrl(src))) {
      return Error("COPY cannot fetch URLs (" + RedactUrlCredentials(src) + "): use ADD", EINVAL);
    }
    local.push_back(src);
  }
  if (!c.checksum.empty() && (urls.size() + gits.size() != 1 || !local.empty())) {
    return Error("--checksum needs exactly one http(s) or git source", EINVAL);
  }
  if (!urls.empty() && !c.checksum.empty() && c.checksum.rfind("sha256:", 0) != 0) {
    return Error("ADD " + RedactUrlCredentials(urls[0]) +
                     ": --checksum for an http(s) source is sha256:<hex>",
                 EINVAL);
  }
  std::string created_by = std::string(add ? "ADD " : "COPY ");
  if (!c.from.empty()) created_by += "--from=" + c.from + " ";
  if (!c.chown.empty()) created_by += "--chown=" + c.chown + " ";
  if (!c.chmod.empty()) created_by += "--chmod=" + c.chmod + " ";
  created_by += RedactUrlCredentials(JoinWords(c.sources)) + " " + c.dest + " # buildkit";
  // The copy of the local sources and heredocs into `dst_fd`, with the owner resolved in `root`.
  const std::size_t total = local.size() + urls.size() + gits.size() + inline_files.size();
  auto request = [&](int dst_fd, int src_fd, const std::string& root) -> Result<CopyRequest> {
    CopyRequest req;
    req.dst_root_fd = dst_fd;
    req.dest = dest;
    if (total > 1 && req.dest.back() != '/') req.dest += "/";
    req.chmod = c.chmod;
    req.parents = c.parents;
    req.link = c.link;
    req.excludes = c.excludes;
    req.privileged = geteuid() == 0;
    req.src_root_fd = src_fd;
    req.from_context = from_context;
    req.ignore = from_context ? &ctx_.ignore : nullptr;
    req.sources = local;
    req.inline_files = inline_files;
    req.unpack_archives = add && from_context && c.unpack.value_or(true);
    if (!c.chown.empty()) {
      auto owner = userdb::ResolveChown(root, c.chown);
      if (!owner.ok()) return std::move(owner.error().AddContext("--chown=" + c.chown));
      req.chown = FileOwner{owner->uid, owner->gid};
    }
    return req;
  };
  // For the layer cache: the instruction, and the files as they would land -- names, types,
  // modes, owners and contents -- copied once into a scratch directory and hashed. URLs and git
  // sources count only with a --checksum (otherwise the step is not cached).
  std::string material;
  if (cache_ && ((urls.empty() && gits.empty()) || !c.checksum.empty())) {
    nlohmann::json m;
    m["kind"] = add ? "ADD" : "COPY";
    m["sources"] = c.sources;
    m["dest"] = dest;
    m["from"] = c.from;
    m["chown"] = c.chown;
    m["chmod"] = c.chmod;
    m["link"] = c.link;
    m["parents"] = c.parents;
    m["excludes"] = c.excludes;
    m["unpack"] = c.unpack ? (*c.unpack ? "true" : "false") : "default";
    m["checksum"] = c.checksum;
    m["keep_git_dir"] = c.keep_git_dir;
    const std::string staged = NewScratch();
    UniqueFd sd(open(staged.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd src(open(src_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    auto req = request(sd.get(), src.get(), st.rootfs);
    const bool ok = sd.valid() && src.valid() && req.ok();
    // A copy that fails here fails again in the step, which reports it: not cached.
    if (ok && (!local.empty() || !inline_files.empty()) && CopyFiles(*req).ok()) {
      image::Sha256 h;
      if (HashTree(sd.get(), "", h).ok()) {
        m["files"] = h.Digest();
        material = m.dump();
      }
    } else if (ok && local.empty() && inline_files.empty()) {
      material = m.dump();
    }
  }
  return FsStep(st, material, created_by, step, [&](const std::string& root) -> Result<std::vector<TouchedDir>> {
    UniqueFd dst(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd src(open(src_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dst.valid() || !src.valid()) return ErrnoError("opening the roots of the copy");
    SLIPWAY_ASSIGN_OR_RETURN(CopyRequest req, request(dst.get(), src.get(), root));
    if (total > 1 && dest.back() != '/') {
      // Several sources (heredocs and URLs included) need a directory destination.
      struct stat sst;
      auto d = OpenInRoot(dst.get(), dest, O_PATH);
      if (!d.ok() || fstat(d->get(), &sst) != 0 || !S_ISDIR(sst.st_mode)) {
        return Error(std::string("When using ") + (add ? "ADD" : "COPY") +
                         " with more than one source file, the destination must be a directory "
                         "and end with a /",
                     EINVAL);
      }
    }
    if (!local.empty() || !inline_files.empty()) {
      SLIPWAY_ASSIGN_OR_RETURN(CopyStats stats, CopyFiles(req));
      for (const std::string& w : stats.warnings) progress_.Message(Verbosity::kWarn, w);
    }
    // A fetched source, copied like a context file: owned 0:0 unless --chown.
    auto copy_fetched = [&](const std::string& dir, const std::string& source, bool unpack,
                            bool into_dir) -> Result<void> {
      UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!d.valid()) return ErrnoError("opening " + dir);
      CopyRequest u = req;
      u.src_root_fd = d.get();
      u.from_context = true;
      u.ignore = nullptr;
      u.sources = {source};
      u.inline_files.clear();
      u.unpack_archives = unpack;
      if (into_dir && u.dest.back() != '/') u.dest += "/";
      SLIPWAY_ASSIGN_OR_RETURN(CopyStats stats, CopyFiles(u));
      (void)stats;
      return Ok{};
    };
    for (const std::string& url : urls) {
      const std::string shown = RedactUrlCredentials(url);
      const std::string dir = NewScratch();
      std::string name = UrlFileName(url);
      if (name.empty()) name = "download";
      const std::string file = dir + "/" + name;
      progress_.Output(step, "downloading " + shown);
      SLIPWAY_ASSIGN_OR_RETURN(Fetched f, FetchUrl(url, file));
      if (!c.checksum.empty() && f.digest != c.checksum) {
        return Error("ADD " + shown + ": checksum mismatch: got " + f.digest + ", --checksum is " +
                         c.checksum,
                     EINVAL);
      }
      const struct timespec times[2] = {{f.mtime.value_or(0), 0}, {f.mtime.value_or(0), 0}};
      if (f.mtime) utimensat(AT_FDCWD, file.c_str(), times, 0);
      chmod(file.c_str(), 0600);
      SLIPWAY_RETURN_IF_ERROR(copy_fetched(dir, name, c.unpack.value_or(false), total > 1));
    }
    for (const std::string& g : gits) {
      // The repository's files go into the destination directory.
      const std::string checkout = NewScratch() + "/repo";
      progress_.Output(step, "cloning " + RedactUrlCredentials(g));
      SLIPWAY_ASSIGN_OR_RETURN(std::string from,
                               FetchGitSource(g, c.checksum, c.keep_git_dir,
                                              GitEnvironment::FromProcess(), checkout));
      SLIPWAY_RETURN_IF_ERROR(copy_fetched(from, ".", false, true));
    }
    return std::vector<TouchedDir>{};
  });
}

Result<void> Builder::DoWorkdir(StageState& st, const Instruction& ins, int step) {
  const std::string cur = st.config.working_dir.empty() ? "/" : st.config.working_dir;
  const std::string path = CleanPath(ins.value[0] == '/' ? ins.value : cur + "/" + ins.value);
  st.config.working_dir = path;
  const std::string created_by = "WORKDIR " + path;
  const std::string root = whole_ ? whole_->root() : st.rootfs;
  UniqueFd rfd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rfd.valid()) return ErrnoError("opening " + root);
  if (OpenInRoot(rfd.get(), path, O_PATH | O_DIRECTORY).ok()) {
    History(st, created_by, true);
    progress_.Done(step, "exists");
    return Ok{};
  }
  rfd.Reset();
  return FsStep(st, "WORKDIR " + path + " " + st.config.user, created_by, step,
                [&](const std::string& r) -> Result<std::vector<TouchedDir>> {
    FileOwner owner;
    if (!st.config.user.empty()) {
      auto id = userdb::ResolveUser(r, st.config.user);
      if (!id.ok()) return std::move(id.error().AddContext("USER " + st.config.user));
      owner = FileOwner{id->uid, id->gid};
    }
    UniqueFd fd(open(r.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    SLIPWAY_ASSIGN_OR_RETURN(UniqueFd dir, MakeDirsInRoot(fd.get(), path, owner, false));
    return std::vector<TouchedDir>{};
  });
}

Result<void> Builder::Execute(const Stage& s, StageState& st, int index, int step) {
  const Instruction& ins = s.instructions[index];
  image::ImageConfig& c = st.config;
  auto meta = [&](const std::string& created_by) {
    History(st, created_by, true);
    progress_.Done(step, "metadata");
    return Result<void>(Ok{});
  };
  auto command = [&](const dockerfile::CommandLine& cl) {
    if (cl.exec_form) return cl.exec;
    std::vector<std::string> v =
        c.shell.empty() ? std::vector<std::string>{"/bin/sh", "-c"} : c.shell;
    v.push_back(cl.shell);
    return v;
  };
  switch (ins.kind) {
    case Kind::kRun:
      return DoRun(s, st, index, step);
    case Kind::kCopy:
    case Kind::kAdd:
      return DoCopy(s, st, index, step);
    case Kind::kWorkdir:
      return DoWorkdir(st, ins, step);
    case Kind::kEnv: {
      std::string desc;
      for (const auto& kv : ins.pairs) {
        SetEnv(c.env, kv.key, kv.value);
        desc += (desc.empty() ? "" : " ") + kv.key + "=" + kv.value;
      }
      return meta("ENV " + desc);
    }
    case Kind::kArg: {
      std::string desc;
      for (const auto& a : ins.args) {
        auto v = ins.arg_values.find(a.name);
        if (v != ins.arg_values.end()) {
          st.args[a.name] = v->second;
          desc += (desc.empty() ? "" : " ") + a.name + "=" + v->second;
        } else {
          desc += (desc.empty() ? "" : " ") + a.name;
        }
      }
      return meta("ARG " + desc);
    }
    case Kind::kLabel: {
      std::string desc;
      for (const auto& kv : ins.pairs) {
        c.labels[kv.key] = kv.value;
        desc += (desc.empty() ? "" : " ") + kv.key + "=" + kv.value;
      }
      return meta("LABEL " + desc);
    }
    case Kind::kExpose: {
      for (std::string p : ins.words) {
        if (p.find('/') == std::string::npos) p += "/tcp";
        for (char& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (std::find(c.exposed_ports.begin(), c.exposed_ports.end(), p) == c.exposed_ports.end()) {
          c.exposed_ports.push_back(p);
        }
      }
      return meta("EXPOSE " + JoinWords(ins.words));
    }
    case Kind::kVolume: {
      for (const std::string& v : ins.words) {
        if (std::find(c.volumes.begin(), c.volumes.end(), v) == c.volumes.end()) c.volumes.push_back(v);
      }
      return meta("VOLUME " + JoinWords(ins.words));
    }
    case Kind::kUser:
      c.user = ins.value;
      return meta("USER " + ins.value);
    case Kind::kShell:
      c.shell = ins.words;
      return meta("SHELL [" + JoinWords(ins.words) + "]");
    case Kind::kCmd:
      c.cmd = command(ins.command);
      st.cmd_set = true;
      return meta("CMD [" + JoinWords(*c.cmd) + "]");
    case Kind::kEntrypoint:
      c.entrypoint = command(ins.command);
      if (!st.cmd_set) c.cmd.reset();  // an inherited CMD does not survive a new ENTRYPOINT
      return meta("ENTRYPOINT [" + JoinWords(*c.entrypoint) + "]");
    case Kind::kHealthcheck: {
      image::Healthcheck h;
      if (ins.health.none) {
        h.test = {"NONE"};
      } else if (ins.health.command.exec_form) {
        h.test = {"CMD"};
        h.test.insert(h.test.end(), ins.health.command.exec.begin(), ins.health.command.exec.end());
      } else {
        h.test = {"CMD-SHELL", ins.health.command.shell};
      }
      h.interval = ins.health.interval_ns;
      h.timeout = ins.health.timeout_ns;
      h.start_period = ins.health.start_period_ns;
      h.start_interval = ins.health.start_interval_ns;
      h.retries = ins.health.retries;
      c.healthcheck = h;
      return meta("HEALTHCHECK " + JoinWords(h.test));
    }
    case Kind::kStopsignal:
      c.stop_signal = ins.value;
      return meta("STOPSIGNAL " + ins.value);
    case Kind::kOnbuild:
      c.on_build.push_back(ins.value);
      return meta("ONBUILD " + ins.value);
    case Kind::kMaintainer:
      c.author = ins.value;
      return meta("MAINTAINER " + ins.value);
    case Kind::kFrom:
      break;
  }
  return Error("unexpected instruction", EINVAL);
}

Result<void> Builder::Export(StageState& st) {
  image::ImageConfig& c = st.config;
  for (const auto& [k, v] : r_.labels) c.labels[k] = v;
  c.created = now_;
  c.diff_ids.clear();
  for (const Layer& l : st.layers) c.diff_ids.push_back(l.diff_id);
  SLIPWAY_RETURN_IF_ERROR(image::CheckHistory(c));
  const int step = progress_.Start("exporting the image");
  const auto export_start = std::chrono::steady_clock::now();
  // Blobs for the OCI manifest, plain tars for the docker archive.
  const bool need_tars = !r_.tar_path.empty();
  const snapshot::LayerOptions lo = LayerOpts();
  int n = 0;
  for (Layer& l : st.layers) {
    ++n;
    if (l.blob_path.empty()) {
      l.blob_path = work_->path() + "/blob-" + std::to_string(n);
      UniqueFd in(open(l.tar_path.c_str(), O_RDONLY | O_CLOEXEC));
      UniqueFd out(open(l.blob_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!in.valid() || !out.valid()) return ErrnoError("compressing layer " + l.diff_id);
      SLIPWAY_ASSIGN_OR_RETURN(snapshot::LayerBlob b, snapshot::CompressLayer(in.get(), out.get(), lo));
      l.digest = b.digest;
      l.size = static_cast<std::int64_t>(b.size);
      l.media_type = r_.compression == snapshot::Compression::kZstd ? image::kMediaTypeLayerZstd
                     : r_.compression == snapshot::Compression::kGzip ? image::kMediaTypeLayerGzip
                                                                     : image::kMediaTypeLayer;
    }
    if (need_tars && l.tar_path.empty()) {
      l.tar_path = work_->path() + "/tar-" + std::to_string(n) + ".tar";
      SLIPWAY_RETURN_IF_ERROR(Decompress(l.blob_path, l.tar_path, l.diff_id));
    }
  }
  const std::string config_bytes = image::Serialize(image::ToJson(c));
  image::Manifest m;
  m.config.media_type = image::kMediaTypeConfig;
  m.config.digest = image::Sha256Digest(config_bytes);
  m.config.size = static_cast<std::int64_t>(config_bytes.size());
  std::uint64_t size = config_bytes.size();
  for (const Layer& l : st.layers) {
    image::Descriptor d;
    d.media_type = l.media_type;
    d.digest = l.digest;
    d.size = l.size;
    m.layers.push_back(d);
    size += static_cast<std::uint64_t>(l.size);
  }
  const std::string manifest_bytes = image::Serialize(image::ToJson(m));
  const std::string digest = image::Sha256Digest(manifest_bytes);
  out_->digest = digest;
  out_->size = size;
  out_->layers = static_cast<int>(st.layers.size());
  std::string tag = "latest";
  if (!destinations_.empty() && !destinations_.front().tag.empty()) {
    tag = destinations_.front().tag;
  }
  if (!r_.oci_layout_path.empty()) {
    const std::string& path = r_.oci_layout_path;
    // Written beside the destination, then swapped in: an existing layout is replaced only once
    // the new one is complete.
    const std::string fresh = path + ".slipway-new-" + std::to_string(getpid());
    SLIPWAY_ASSIGN_OR_RETURN(image::OciLayoutWriter w, image::OciLayoutWriter::Create(fresh));
    for (const Layer& l : st.layers) {
      SLIPWAY_ASSIGN_OR_RETURN(image::Descriptor d, w.AddBlobFile(l.blob_path, l.media_type));
      if (d.digest != l.digest) {
        return Error("layer " + l.blob_path + " changed while it was exported", EIO);
      }
    }
    SLIPWAY_RETURN_IF_ERROR(w.AddBlob(config_bytes, image::kMediaTypeConfig));
    SLIPWAY_ASSIGN_OR_RETURN(image::Descriptor md, w.AddBlob(manifest_bytes, image::kMediaTypeManifest));
    w.AddManifest(md, tag);
    SLIPWAY_RETURN_IF_ERROR(w.Commit());
    if (auto ok = CheckReplaceable(path); !ok.ok()) {
      RemoveTree(fresh);
      return ok;
    }
    std::string old;
    if (access(path.c_str(), F_OK) == 0) {
      old = path + ".slipway-old-" + std::to_string(getpid());
      if (rename(path.c_str(), old.c_str()) != 0) {
        RemoveTree(fresh);
        return ErrnoError("moving the old " + path + " aside");
      }
    }
    if (rename(fresh.c_str(), path.c_str()) != 0) {
      const Error e = ErrnoError("renaming the new layout to " + path);
      if (!old.empty()) rename(old.c_str(), path.c_str());
      RemoveTree(fresh);
      return e;
    }
    if (!old.empty()) RemoveTree(old);
    progress_.Output(step, "OCI layout written to " + path + " (tag " + tag + ")");
  }
  if (!r_.tar_path.empty()) {
    std::vector<std::string> tars, tags;
    for (const Layer& l : st.layers) tars.push_back(l.tar_path);
    for (const image::Reference& d : destinations_) {
      if (!d.tag.empty()) tags.push_back(d.FamiliarName() + ":" + d.tag);
    }
    SLIPWAY_RETURN_IF_ERROR(image::WriteDockerArchive(r_.tar_path, config_bytes, tars, tags));
    progress_.Output(step, "docker-archive written to " + r_.tar_path);
  }
  if (!destinations_.empty() && !r_.no_push) {
    SLIPWAY_RETURN_IF_ERROR(Push(st, config_bytes, manifest_bytes, step));
  }
  // Written only now: after every push succeeded.
  if (!r_.digest_file.empty()) SLIPWAY_RETURN_IF_ERROR(WriteFileAtomic(r_.digest_file, digest));
  if (!r_.image_name_with_digest_file.empty()) {
    std::string text;
    for (const image::Reference& d : destinations_) {
      text += d.registry + "/" + d.repository + "@" + digest + "\n";
    }
    SLIPWAY_RETURN_IF_ERROR(WriteFileAtomic(r_.image_name_with_digest_file, text));
  }
  progress_.Timing(step, {{"write", Since(export_start)}});
  progress_.Done(step);
  return Ok{};
}

int Builder::Run(BuildOutcome* out) {
  out_ = out;
  auto fail = [&](const Error& e) {
    out->error = e.ToString();
    // A failed RUN reports its own exit code; anything else is 1.
    return out->exit_code = exit_code_ > 0 ? exit_code_ : 1;
  };
  if (auto r = Prepare(); !r.ok()) return fail(r.error());
  for (int i : plan_.needed) {
    if (auto r = BuildStage(i); !r.ok()) return fail(r.error());
  }
  if (g_signal.load()) {
    exit_code_ = 128 + g_signal.load();
    return fail(Error("interrupted by signal " + std::to_string(g_signal.load()), EINTR));
  }
  if (auto r = Export(states_[plan_.target]); !r.ok()) return fail(r.error());
  out->exit_code = 0;
  char size[64];
  std::snprintf(size, sizeof(size), "%.1f MiB", static_cast<double>(out->size) / (1 << 20));
  std::string where;
  if (!r_.oci_layout_path.empty()) where += " oci-layout:" + r_.oci_layout_path;
  if (!r_.tar_path.empty()) where += " docker-archive:" + r_.tar_path;
  if (!r_.no_push) {
    for (const image::Reference& d : destinations_) where += " " + d.ToString();
  }
  if (where.empty()) where = " (no output requested)";
  progress_.Summary("image " + out->digest + ", " + std::to_string(out->layers) + " layers, " +
                        size + " ->" + where,
                    {{"digest", out->digest},
                     {"layers", std::to_string(out->layers)},
                     {"size", std::to_string(out->size)},
                     {"oci_layout", r_.oci_layout_path},
                     {"tar", r_.tar_path}});
  return 0;
}

}  // namespace

void InstallSignalForwarding() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (g_signal.load() && sig == SIGINT) _exit(130);  // a second Ctrl-C: stop now
      g_signal.store(sig);
      std::lock_guard<std::mutex> l(g_proc_mu);
      if (g_proc) (void)g_proc->Signal(sig);
    }
  }).detach();
}

BuildOutcome Build(const BuildRequest& request, Progress& progress) {
  BuildOutcome out;
  Builder b(request, progress);
  b.Run(&out);
  return out;
}

}  // namespace slipway::executor
