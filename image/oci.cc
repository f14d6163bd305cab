#include "image/oci.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "base/fs.h"
#include "image/digest.h"

namespace slipway::image {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Hex(const std::string& digest) { return digest.substr(7); }

Result<void> WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return ErrnoError("writing " + path);
  return Ok{};
}

template <typename F>
Result<json> ParseJson(const std::string& bytes, const std::string& what, F&& check) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(what + " is not a JSON object", EINVAL);
  return check(j);
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::map<std::string, std::string> StrMap(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::vector<std::string> StrList(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> Keys(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_object()) return out;
  for (auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

json Set(const std::vector<std::string>& keys) {
  json o = json::object();
  for (const auto& k : keys) o[k] = json::object();
  return o;
}

}  // namespace

std::string Rfc3339(std::int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool PlatformMatches(const std::optional<Platform>& p, const Platform& want) {
  if (!p) return true;
  if (p->os != want.os || p->architecture != want.architecture) return false;
  return want.variant.empty() || p->variant.empty() || p->variant == want.variant;
}

std::string Serialize(const json& j) { return j.dump(); }  // nlohmann sorts object keys

json ToJson(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) {
    json p = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
    if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
    j["platform"] = p;
  }
  return j;
}

json ToJson(const Manifest& m) {
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(ToJson(l));
  json j = {{"schemaVersion", 2},
            {"mediaType", m.media_type},
            {"config", ToJson(m.config)},
            {"layers", layers}};
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  return j;
}

json ToJson(const Index& i) {
  json ms = json::array();
  for (const auto& m : i.manifests) ms.push_back(ToJson(m));
  json j = {{"schemaVersion", 2}, {"mediaType", i.media_type}, {"manifests", ms}};
  if (!i.annotations.empty()) j["annotations"] = i.annotations;
  return j;
}

json ToJson(const ImageConfig& c) {
  json cfg = json::object();
  if (!c.user.empty()) cfg["User"] = c.user;
  if (!c.exposed_ports.empty()) cfg["ExposedPorts"] = Set(c.exposed_ports);
  if (!c.env.empty()) cfg["Env"] = c.env;
  if (c.entrypoint) cfg["Entrypoint"] = *c.entrypoint;
  if (c.cmd) cfg["Cmd"] = *c.cmd;
  if (!c.volumes.empty()) cfg["Volumes"] = Set(c.volumes);
  if (!c.working_dir.empty()) cfg["WorkingDir"] = c.working_dir;
  if (!c.labels.empty()) cfg["Labels"] = c.labels;
  if (!c.stop_signal.empty()) cfg["StopSignal"] = c.stop_signal;
  if (!c.on_build.empty()) cfg["OnBuild"] = c.on_build;
  if (!c.shell.empty()) cfg["Shell"] = c.shell;
  if (c.healthcheck) {
    json h = {{"Test", c.healthcheck->test}};
    if (c.healthcheck->interval) h["Interval"] = c.healthcheck->interval;
    if (c.healthcheck->timeout) h["Timeout"] = c.healthcheck->timeout;
    if (c.healthcheck->start_period) h["StartPeriod"] = c.healthcheck->start_period;
    if (c.healthcheck->start_interval) h["StartInterval"] = c.healthcheck->start_interval;
    if (c.healthcheck->retries) h["Retries"] = c.healthcheck->retries;
    cfg["Healthcheck"] = h;
  }
  json history = json::array();
  for (const auto& h : c.history) {
    json e = json::object();
    if (!h.created.empty()) e["created"] = h.created;
    if (!h.created_by.empty()) e["created_by"] = h.created_by;
    if (!h.author.empty()) e["author"] = h.author;
    if (!h.comment.empty()) e["comment"] = h.comment;
    if (h.empty_layer) e["empty_layer"] = true;
    history.push_back(e);
  }
  json j = {{"architecture", c.architecture},
            {"os", c.os},
            {"config", cfg},
            {"rootfs", {{"type", "layers"}, {"diff_ids", c.diff_ids}}},
            {"history", history}};
  if (!c.created.empty()) j["created"] = c.created;
  if (!c.author.empty()) j["author"] = c.author;
  if (!c.variant.empty()) j["variant"] = c.variant;
  return j;
}

Result<Descriptor> DescriptorFromJson(const json& j) {
  if (!j.is_object()) return Error("a descriptor is not a JSON object", EINVAL);
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  d.digest = Str(j, "digest");
  if (!IsSha256Digest(d.digest)) {
    return Error("descriptor digest \"" + d.digest + "\" is not a sha256 digest", EINVAL);
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0) {
    return Error("descriptor " + d.digest + " has no valid size", EINVAL);
  }
  d.size = size->get<std::int64_t>();
  d.annotations = StrMap(j, "annotations");
  auto p = j.find("platform");
  if (p != j.end() && p->is_object()) {
    d.platform = Platform{Str(*p, "os"), Str(*p, "architecture"), Str(*p, "variant")};
  }
  return d;
}

Result<Manifest> ManifestFromJson(const std::string& bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error("the manifest is not a JSON object", EINVAL);
  if (j.value("schemaVersion", 0) != 2) return Error("manifest schemaVersion is not 2", EINVAL);
  Manifest m;
  m.media_type = Str(j, "mediaType");
  if (!j.contains("config")) return Error("the manifest has no config", EINVAL);
  SLIPWAY_ASSIGN_OR_RETURN(m.config, DescriptorFromJson(j["config"]));
  if (j.contains("layers") && j["layers"].is_array()) {
    for (const auto& l : j["layers"]) {
      SLIPWAY_ASSIGN_OR_RETURN(Descriptor d, DescriptorFromJson(l));
      m.layers.push_back(std::move(d));
    }
  }
  m.annotations = StrMap(j, "annotations");
  return m;
}

Result<Index> IndexFromJson(const std::string& bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error("the index is not a JSON object", EINVAL);
  if (j.value("schemaVersion", 0) != 2) return Error("index schemaVersion is not 2", EINVAL);
  Index i;
  i.media_type = Str(j, "mediaType");
  if (j.contains("manifests") && j["manifests"].is_array()) {
    for (const auto& m : j["manifests"]) {
      SLIPWAY_ASSIGN_OR_RETURN(Descriptor d, DescriptorFromJson(m));
      i.manifests.push_back(std::move(d));
    }
  }
  i.annotations = StrMap(j, "annotations");
  return i;
}

Result<ImageConfig> ConfigFromJson(const std::string& bytes) {
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error("the config is not a JSON object", EINVAL);
  ImageConfig c;
  c.created = Str(j, "created");
  c.author = Str(j, "author");
  c.architecture = Str(j, "architecture");
  c.os = Str(j, "os");
  c.variant = Str(j, "variant");
  if (!j.contains("rootfs") || !j["rootfs"].is_object()) {
    return Error("invalid image config (rootfs is not set)", EINVAL);
  }
  c.diff_ids = StrList(j["rootfs"], "diff_ids");
  if (j.contains("config") && j["config"].is_object()) {
    const json& k = j["config"];
    c.user = Str(k, "User");
    c.exposed_ports = Keys(k, "ExposedPorts");
    c.env = StrList(k, "Env");
    if (k.contains("Entrypoint") && k["Entrypoint"].is_array())
      c.entrypoint = StrList(k, "Entrypoint");
    if (k.contains("Cmd") && k["Cmd"].is_array()) c.cmd = StrList(k, "Cmd");
    c.volumes = Keys(k, "Volumes");
    c.working_dir = Str(k, "WorkingDir");
    c.labels = StrMap(k, "Labels");
    c.stop_signal = Str(k, "StopSignal");
    c.on_build = StrList(k, "OnBuild");
    c.shell = StrList(k, "Shell");
    if (k.contains("Healthcheck") && k["Healthcheck"].is_object()) {
      const json& h = k["Healthcheck"];
      Healthcheck hc;
      hc.test = StrList(h, "Test");
      hc.interval = h.value("Interval", std::int64_t{0});
      hc.timeout = h.value("Timeout", std::int64_t{0});
      hc.start_period = h.value("StartPeriod", std::int64_t{0});
      hc.start_interval = h.value("StartInterval", std::int64_t{0});
      hc.retries = h.value("Retries", 0);
      c.healthcheck = hc;
    }
  }
  if (j.contains("history") && j["history"].is_array()) {
    for (const auto& h : j["history"]) {
      if (!h.is_object()) continue;
      HistoryEntry e;
      e.created = Str(h, "created");
      e.created_by = Str(h, "created_by");
      e.author = Str(h, "author");
      e.comment = Str(h, "comment");
      e.empty_layer = h.value("empty_layer", false);
      c.history.push_back(e);
    }
  }
  return c;
}

Result<void> CheckHistory(const ImageConfig& c) {
  if (c.history.empty()) return Ok{};
  std::size_t layered = 0;
  for (const auto& h : c.history) layered += h.empty_layer ? 0 : 1;
  if (layered != c.diff_ids.size()) {
    return Error("history has " + std::to_string(layered) + " entries with layers but rootfs has " +
                     std::to_string(c.diff_ids.size()) + " diff_ids",
                 EINVAL);
  }
  return Ok{};
}

// ---- Layout writer --------------------------------------------------------------------------

Result<OciLayoutWriter> OciLayoutWriter::Create(const std::string& path) {
  if (fs::exists(path)) return Error("OCI layout " + path + " already exists", EEXIST);
  OciLayoutWriter w;
  w.path_ = path;
  std::string tmpl = path + ".tmp-XXXXXX";
  if (!mkdtemp(tmpl.data())) return ErrnoError("creating a temporary directory for " + path);
  w.tmp_ = tmpl;
  std::error_code ec;
  fs::create_directories(w.tmp_ + "/blobs/sha256", ec);
  if (ec) return Error("creating " + w.tmp_ + "/blobs/sha256: " + ec.message(), ec.value());
  return w;
}

OciLayoutWriter::OciLayoutWriter(OciLayoutWriter&& o) noexcept
    : path_(std::move(o.path_)),
      tmp_(std::move(o.tmp_)),
      index_(std::move(o.index_)),
      committed_(o.committed_) {
  o.tmp_.clear();
}

OciLayoutWriter::~OciLayoutWriter() {
  if (!committed_ && !tmp_.empty()) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

Result<Descriptor> OciLayoutWriter::AddBlob(const std::string& bytes,
                                            const std::string& media_type) {
  Descriptor d;
  d.media_type = media_type;
  d.digest = Sha256Digest(bytes);
  d.size = static_cast<std::int64_t>(bytes.size());
  SLIPWAY_RETURN_IF_ERROR(WriteAll(tmp_ + "/blobs/sha256/" + Hex(d.digest), bytes));
  return d;
}

Result<Descriptor> OciLayoutWriter::AddBlobFile(const std::string& file,
                                                const std::string& media_type) {
  const std::string staging = tmp_ + "/blobs/sha256/.incoming";
  int in = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError("opening " + file);
  int out = open(staging.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    close(in);
    return ErrnoError("creating " + staging);
  }
  Sha256 h;
  char buf[1 << 16];
  std::int64_t total = 0;
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    h.Update(buf, static_cast<std::size_t>(n));
    if (write(out, buf, static_cast<std::size_t>(n)) != n) {
      close(in);
      close(out);
      return ErrnoError("writing " + staging);
    }
    total += n;
  }
  close(in);
  if (close(out) != 0 || n < 0) return ErrnoError("copying " + file);
  Descriptor d;
  d.media_type = media_type;
  d.digest = h.Digest();
  d.size = total;
  if (rename(staging.c_str(), (tmp_ + "/blobs/sha256/" + Hex(d.digest)).c_str()) != 0) {
    return ErrnoError("storing blob " + d.digest);
  }
  return d;
}

void OciLayoutWriter::AddManifest(Descriptor manifest, const std::string& ref_name) {
  if (!ref_name.empty()) manifest.annotations[kRefNameAnnotation] = ref_name;
  index_.manifests.push_back(std::move(manifest));
}

Result<void> OciLayoutWriter::Commit() {
  SLIPWAY_RETURN_IF_ERROR(WriteAll(tmp_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  SLIPWAY_RETURN_IF_ERROR(WriteAll(tmp_ + "/index.json", Serialize(ToJson(index_))));
  if (rename(tmp_.c_str(), path_.c_str()) != 0)
    return ErrnoError("renaming the layout to " + path_);
  committed_ = true;
  return Ok{};
}

// ---- Layout reader --------------------------------------------------------------------------

Result<OciLayout> OciLayout::Open(const std::string& path) {
  OciLayout l;
  l.path_ = path;
  SLIPWAY_ASSIGN_OR_RETURN(std::string layout, ReadWholeFile(path + "/oci-layout"));
  json lj = json::parse(layout, nullptr, false);
  if (lj.is_discarded() || Str(lj, "imageLayoutVersion").empty()) {
    return Error(path + "/oci-layout has no imageLayoutVersion", EINVAL);
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::string index, ReadWholeFile(path + "/index.json"));
  auto idx = IndexFromJson(index);
  if (!idx.ok()) return std::move(idx.error().AddContext(path + "/index.json"));
  l.index_ = std::move(idx).value();
  return l;
}

std::string OciLayout::BlobPath(const std::string& digest) const {
  return path_ + "/blobs/sha256/" + Hex(digest);
}

Result<std::string> OciLayout::ReadBlob(const std::string& digest, std::int64_t size) const {
  if (!IsSha256Digest(digest)) return Error("\"" + digest + "\" is not a sha256 digest", EINVAL);
  SLIPWAY_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(BlobPath(digest)));
  if (Sha256Digest(bytes) != digest) {
    return Error("blob " + digest + " in " + path_ + " does not match its digest", EINVAL);
  }
  if (size >= 0 && static_cast<std::int64_t>(bytes.size()) != size) {
    return Error("blob " + digest + " has " + std::to_string(bytes.size()) +
                     " bytes, its descriptor says " + std::to_string(size),
                 EINVAL);
  }
  return bytes;
}

Result<ResolvedImage> OciLayout::Resolve(const std::string& ref, const Platform& platform) const {
  std::vector<Descriptor> candidates;
  for (const auto& d : index_.manifests) {
    auto it = d.annotations.find(kRefNameAnnotation);
    if (ref.empty() || (it != d.annotations.end() && it->second == ref)) candidates.push_back(d);
  }
  if (candidates.empty()) return Error("no image tagged \"" + ref + "\" in " + path_, ENOENT);
  if (ref.empty() && candidates.size() > 1) {
    return Error(
        path_ + " holds " + std::to_string(candidates.size()) + " images; say which tag to use",
        EINVAL);
  }
  Descriptor d = candidates.front();
  for (int depth = 0; depth < 8; ++depth) {
    const bool is_index = d.media_type == kMediaTypeIndex || d.media_type == kDockerManifestList;
    if (!is_index) break;
    SLIPWAY_ASSIGN_OR_RETURN(std::string bytes, ReadBlob(d.digest, d.size));
    SLIPWAY_ASSIGN_OR_RETURN(Index nested, IndexFromJson(bytes));
    bool found = false;
    for (const auto& m : nested.manifests) {
      if (PlatformMatches(m.platform, platform)) {
        d = m;
        found = true;
        break;
      }
    }
    if (!found) {
      return Error(
          "no manifest for " + platform.os + "/" + platform.architecture + " in " + d.digest,
          ENOENT);
    }
  }
  ResolvedImage r;
  r.manifest_descriptor = d;
  SLIPWAY_ASSIGN_OR_RETURN(std::string mbytes, ReadBlob(d.digest, d.size));
  SLIPWAY_ASSIGN_OR_RETURN(r.manifest, ManifestFromJson(mbytes));
  SLIPWAY_ASSIGN_OR_RETURN(r.config_bytes,
                           ReadBlob(r.manifest.config.digest, r.manifest.config.size));
  SLIPWAY_ASSIGN_OR_RETURN(r.config, ConfigFromJson(r.config_bytes));
  if (r.config.diff_ids.size() != r.manifest.layers.size()) {
    return Error("manifest has " + std::to_string(r.manifest.layers.size()) +
                     " layers but the config lists " + std::to_string(r.config.diff_ids.size()) +
                     " diff_ids",
                 EINVAL);
  }
  return r;
}

// ---- docker-archive -------------------------------------------------------------------------

namespace {

struct WriterFree {
  void operator()(archive* a) const { archive_write_free(a); }
};

Result<void> AddTarFile(archive* a, const std::string& name, const std::string* bytes,
                        const std::string* file) {
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, 0, 0);
  std::int64_t size = 0;
  if (bytes) {
    size = static_cast<std::int64_t>(bytes->size());
  } else {
    struct stat st;
    if (stat(file->c_str(), &st) != 0) {
      archive_entry_free(e);
      return ErrnoError("reading " + *file);
    }
    size = st.st_size;
  }
  archive_entry_set_size(e, size);
  int r = archive_write_header(a, e);
  archive_entry_free(e);
  if (r != ARCHIVE_OK) return Error("writing " + name + ": " + archive_error_string(a), EIO);
  if (bytes) {
    if (archive_write_data(a, bytes->data(), bytes->size()) < 0) {
      return Error("writing " + name + ": " + archive_error_string(a), EIO);
    }
    return Ok{};
  }
  int fd = open(file->c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening " + *file);
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    if (archive_write_data(a, buf, static_cast<std::size_t>(n)) < 0) {
      close(fd);
      return Error("writing " + name + ": " + archive_error_string(a), EIO);
    }
  }
  close(fd);
  return n < 0 ? ErrnoError("reading " + *file) : Result<void>(Ok{});
}

}  // namespace

Result<void> WriteDockerArchive(const std::string& out_path, const std::string& config_bytes,
                                const std::vector<std::string>& layer_files,
                                const std::vector<std::string>& tags) {
  SLIPWAY_ASSIGN_OR_RETURN(ImageConfig config, ConfigFromJson(config_bytes));
  if (config.diff_ids.size() != layer_files.size()) {
    return Error("layers length mismatch: " + std::to_string(layer_files.size()) +
                     " layer files for " + std::to_string(config.diff_ids.size()) + " diff_ids",
                 EINVAL);
  }
  Manifest m;
  m.config = Descriptor{kMediaTypeConfig,
                        Sha256Digest(config_bytes),
                        static_cast<std::int64_t>(config_bytes.size()),
                        {},
                        std::nullopt};
  json layers_paths = json::array();
  for (std::size_t i = 0; i < layer_files.size(); ++i) {
    SLIPWAY_ASSIGN_OR_RETURN(std::string d, Sha256File(layer_files[i]));
    if (d != config.diff_ids[i]) {
      return Error("invalid diffID for layer " + std::to_string(i) + ": " + layer_files[i] +
                       " hashes to " + d + ", the config says " + config.diff_ids[i],
                   EINVAL);
    }
    struct stat st;
    if (stat(layer_files[i].c_str(), &st) != 0) return ErrnoError("reading " + layer_files[i]);
    m.layers.push_back(Descriptor{kMediaTypeLayer, d, st.st_size, {}, std::nullopt});
    layers_paths.push_back("blobs/sha256/" + Hex(d));
  }
  const std::string manifest_bytes = Serialize(ToJson(m));
  Index index;
  json repositories = json::object();
  json repo_tags = json::array();
  for (const std::string& tag : tags) {
    const std::size_t colon = tag.rfind(':');
    if (colon == std::string::npos || tag.find('@') != std::string::npos ||
        tag.find('/', colon) != std::string::npos) {
      return Error("tag \"" + tag + "\" is not of the form name:tag", EINVAL);
    }
    Descriptor d{kMediaTypeManifest,
                 Sha256Digest(manifest_bytes),
                 static_cast<std::int64_t>(manifest_bytes.size()),
                 {},
                 std::nullopt};
    d.annotations["io.containerd.image.name"] = tag;
    d.annotations[kRefNameAnnotation] = tag.substr(colon + 1);
    index.manifests.push_back(d);
    repositories[tag.substr(0, colon)][tag.substr(colon + 1)] = Hex(Sha256Digest(config_bytes));
    repo_tags.push_back(tag);
  }
  if (tags.empty()) {
    index.manifests.push_back(Descriptor{kMediaTypeManifest,
                                         Sha256Digest(manifest_bytes),
                                         static_cast<std::int64_t>(manifest_bytes.size()),
                                         {},
                                         std::nullopt});
  }
  json docker_manifest = json::array({{{"Config", "blobs/sha256/" + Hex(m.config.digest)},
                                       {"RepoTags", repo_tags},
                                       {"Layers", layers_paths}}});

  // Written to a temporary name and renamed when complete.
  const std::string tmp = out_path + ".tmp";
  {
    std::unique_ptr<archive, WriterFree> a(archive_write_new());
    archive_write_set_format_pax_restricted(a.get());
    if (archive_write_open_filename(a.get(), tmp.c_str()) != ARCHIVE_OK) {
      return Error("creating " + tmp + ": " + archive_error_string(a.get()), EIO);
    }
    const std::string layout = R"({"imageLayoutVersion":"1.0.0"})";
    const std::string index_bytes = Serialize(ToJson(index));
    const std::string manifest_json = Serialize(docker_manifest);
    const std::string repos = Serialize(repositories);
    auto cleanup = [&](Error e) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return e;
    };
    struct Item {
      std::string name;
      const std::string* bytes;
      const std::string* file;
    };
    std::vector<Item> items = {
        {"blobs/sha256/" + Hex(m.config.digest), &config_bytes, nullptr},
        {"blobs/sha256/" + Hex(Sha256Digest(manifest_bytes)), &manifest_bytes, nullptr}};
    std::set<std::string> seen;
    for (std::size_t i = 0; i < layer_files.size(); ++i) {
      const std::string name = "blobs/sha256/" + Hex(m.layers[i].digest);
      if (seen.insert(name).second) items.push_back({name, nullptr, &layer_files[i]});
    }
    items.push_back({"index.json", &index_bytes, nullptr});
    items.push_back({"manifest.json", &manifest_json, nullptr});
    items.push_back({"oci-layout", &layout, nullptr});
    items.push_back({"repositories", &repos, nullptr});
    for (const Item& it : items) {
      auto r = AddTarFile(a.get(), it.name, it.bytes, it.file);
      if (!r.ok()) return cleanup(std::move(r).error());
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) {
      return cleanup(Error("finishing " + tmp + ": " + archive_error_string(a.get()), EIO));
    }
  }
  if (rename(tmp.c_str(), out_path.c_str()) != 0) return ErrnoError("renaming to " + out_path);
  return Ok{};
}

}  // namespace slipway::image
