#include "image/docker_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>

#include "base/fs.h"
#include "base/path.h"
#include "image/digest.h"

namespace slipway::image {
namespace {

struct ReaderFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

// A member's path as the archive means it: relative, cleaned, never above the archive's top.
std::string Clean(const std::string& p) {
  std::string c = CleanPath("/" + p);  // rooted, so ".." cannot climb above the top
  return c == "/" ? "" : c.substr(1);
}

}  // namespace

Result<std::string> UncompressedDigest(const std::string& file) {
  std::unique_ptr<archive, ReaderFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_raw(a.get());
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Error("opening " + file + ": " + archive_error_string(a.get()), EIO);
  }
  archive_entry* e;
  Sha256 h;
  if (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a.get(), buf, sizeof(buf))) > 0) {
      h.Update(buf, static_cast<std::size_t>(n));
    }
    if (n < 0) return Error("reading " + file + ": " + archive_error_string(a.get()), EIO);
  }
  return h.Digest();
}

Result<ArchiveImage> ReadDockerArchive(const std::string& tar_path, const std::string& selector,
                                       const std::string& work_dir) {
  const std::string where = "docker-archive " + tar_path;
  std::unique_ptr<archive, ReaderFree> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), tar_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    return Error(where + ": " + archive_error_string(a.get()), EIO);
  }
  std::map<std::string, std::string> files;  // member path -> copy in work_dir
  std::map<std::string, std::string> links;  // member path -> target member path
  archive_entry* e;
  int count = 0;
  for (;;) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return Error(where + ": " + archive_error_string(a.get()), EIO);
    const std::string name = Clean(archive_entry_pathname(e));
    if (archive_entry_filetype(e) == AE_IFLNK) {
      std::string target = archive_entry_symlink(e);
      const std::size_t slash = name.rfind('/');
      links[name] =
          Clean(target[0] == '/'
                    ? target
                    : (slash == std::string::npos ? "" : name.substr(0, slash + 1)) + target);
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    const std::string copy = work_dir + "/member-" + std::to_string(count++);
    int fd = open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError("creating " + copy);
    int dr = archive_read_data_into_fd(a.get(), fd);
    close(fd);
    if (dr != ARCHIVE_OK)
      return Error(where + ": reading " + name + ": " + archive_error_string(a.get()), EIO);
    files[name] = copy;
  }
  auto member = [&](const std::string& raw) -> Result<std::string> {
    std::string p = Clean(raw);
    if (links.count(p)) p = links[p];  // followed once
    auto it = files.find(p);
    if (it == files.end())
      return Error(where + ": no regular file \"" + raw + "\" in the archive", ENOENT);
    return it->second;
  };
  SLIPWAY_ASSIGN_OR_RETURN(std::string manifest_file, member("manifest.json"));
  SLIPWAY_ASSIGN_OR_RETURN(std::string manifest_bytes, ReadWholeFile(manifest_file));
  nlohmann::json m = nlohmann::json::parse(manifest_bytes, nullptr, false);
  if (m.is_discarded() || !m.is_array() || m.empty()) {
    return Error(where + ": manifest.json is not a non-empty JSON array", EINVAL);
  }
  const nlohmann::json* item = nullptr;
  if (selector.empty()) {
    if (m.size() != 1) {
      return Error(where + " holds " + std::to_string(m.size()) +
                       " images; choose one by name:tag or @index",
                   EINVAL);
    }
    item = &m[0];
  } else if (selector[0] == '@') {
    const std::size_t idx = std::strtoul(selector.c_str() + 1, nullptr, 10);
    if (idx >= m.size()) return Error(where + ": no image " + selector, ENOENT);
    item = &m[idx];
  } else {
    for (const auto& it : m) {
      if (!it.contains("RepoTags") || !it["RepoTags"].is_array()) continue;
      for (const auto& t : it["RepoTags"]) {
        if (t.is_string() && t.get<std::string>() == selector) item = &it;
      }
    }
    if (!item) return Error(where + ": no image tagged " + selector, ENOENT);
  }
  if (!item->is_object() || !(*item).contains("Config") || !(*item)["Config"].is_string()) {
    return Error(where + ": a manifest.json item has no Config", EINVAL);
  }
  ArchiveImage img;
  SLIPWAY_ASSIGN_OR_RETURN(std::string config_file, member((*item)["Config"].get<std::string>()));
  SLIPWAY_ASSIGN_OR_RETURN(img.config_bytes, ReadWholeFile(config_file));
  auto config = ConfigFromJson(img.config_bytes);
  if (!config.ok()) return std::move(config.error().AddContext(where));
  img.config = std::move(config).value();
  if (item->contains("RepoTags") && (*item)["RepoTags"].is_array()) {
    for (const auto& t : (*item)["RepoTags"]) {
      if (t.is_string()) img.repo_tags.push_back(t.get<std::string>());
    }
  }
  const nlohmann::json layers = item->value("Layers", nlohmann::json::array());
  if (!layers.is_array() || layers.size() != img.config.diff_ids.size()) {
    return Error(where + ": layers length mismatch (" + std::to_string(layers.size()) +
                     " layers, " + std::to_string(img.config.diff_ids.size()) + " diff_ids)",
                 EINVAL);
  }
  std::map<std::string, std::string> used;  // layer file -> diff id
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].is_string()) return Error(where + ": a layer path is not a string", EINVAL);
    SLIPWAY_ASSIGN_OR_RETURN(std::string file, member(layers[i].get<std::string>()));
    const std::string& want = img.config.diff_ids[i];
    auto prior = used.find(file);
    if (prior != used.end() && prior->second != want) {
      return Error(where + ": one layer file stands for two diff_ids", EINVAL);
    }
    used[file] = want;
    SLIPWAY_ASSIGN_OR_RETURN(std::string got, UncompressedDigest(file));
    if (got != want) {
      return Error(where + ": invalid diffID for layer " + std::to_string(i) + " (" +
                       layers[i].get<std::string>() + "): it hashes to " + got +
                       ", the config says " + want,
                   EINVAL);
    }
    img.layer_files.push_back(file);
  }
  return img;
}

}  // namespace slipway::image
