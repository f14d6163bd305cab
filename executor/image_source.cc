#include "executor/image_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>

#include "base/unique_fd.h"
#include "image/digest.h"
#include "image/docker_archive.h"
#include "image/reference.h"

namespace slipway::executor {
namespace {

std::string MediaTypeOf(const std::string& path) {
  unsigned char magic[4] = {0, 0, 0, 0};
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid() && read(fd.get(), magic, 4) == 4) {
    if (magic[0] == 0x1f && magic[1] == 0x8b) return image::kMediaTypeLayerGzip;
    if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd) {
      return image::kMediaTypeLayerZstd;
    }
  }
  return image::kMediaTypeLayer;
}

}  // namespace

std::string NormalizeReference(const std::string& ref) {
  // Docker's own rules (image/reference.h); a string that is no valid reference stays as written.
  auto parsed = image::ParseReference(ref);
  if (!parsed.ok()) return ref;
  std::string out = parsed->FamiliarName();
  if (!parsed->tag.empty()) out += ":" + parsed->tag;
  if (!parsed->digest.empty()) out += "@" + parsed->digest;
  return out;
}

image::Platform ParsePlatform(const std::string& text) {
  image::Platform p;
  const std::size_t a = text.find('/');
  p.os = text.substr(0, a);
  if (a == std::string::npos) return p;
  const std::size_t b = text.find('/', a + 1);
  p.architecture = text.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
  if (b != std::string::npos) p.variant = text.substr(b + 1);
  return p;
}

Result<void> ImageSources::Put(const std::string& ref, const std::string& source,
                               const std::string& where) {
  if (ref.empty()) return Error(where + ": the image reference is empty", EINVAL);
  if (source.rfind("oci-layout:", 0) != 0 && source.rfind("docker-archive:", 0) != 0) {
    return Error(where + ": unknown image source \"" + source +
                     "\": expected oci-layout:PATH[:TAG] or docker-archive:PATH[:NAME:TAG]",
                 EINVAL);
  }
  sources_[NormalizeReference(ref)] = source;
  return Ok{};
}

Result<void> ImageSources::Add(const std::string& flag) {
  const std::size_t eq = flag.find('=');
  if (eq == std::string::npos) {
    return Error("--image-source \"" + flag + "\": expected REF=oci-layout:PATH[:TAG] or "
                 "REF=docker-archive:PATH",
                 EINVAL);
  }
  return Put(flag.substr(0, eq), flag.substr(eq + 1), "--image-source \"" + flag + "\"");
}

Result<void> ImageSources::LoadConfig(const std::string& yaml_file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_file);
  } catch (const YAML::Exception& e) {
    return Error(yaml_file + ": " + e.what(), EINVAL);
  }
  if (!root.IsMap() && !root.IsNull()) return Error(yaml_file + ": expected a mapping", EINVAL);
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (key != "image-sources") {
      return Error(yaml_file + ":" + std::to_string(kv.first.Mark().line + 1) +
                       ": unknown key \"" + key + "\" (known: image-sources)",
                   EINVAL);
    }
    if (!kv.second.IsMap()) {
      return Error(yaml_file + ":" + std::to_string(kv.second.Mark().line + 1) +
                       ": image-sources must map references to sources",
                   EINVAL);
    }
    for (const auto& s : kv.second) {
      if (!s.second.IsScalar()) {
        return Error(yaml_file + ":" + std::to_string(s.second.Mark().line + 1) +
                         ": the source of " + s.first.as<std::string>() + " must be a string",
                     EINVAL);
      }
      SLIPWAY_RETURN_IF_ERROR(Put(s.first.as<std::string>(), s.second.as<std::string>(),
                                  yaml_file + ":" + std::to_string(s.first.Mark().line + 1)));
    }
  }
  return Ok{};
}

bool ImageSources::Has(const std::string& ref) const {
  return sources_.count(NormalizeReference(ref)) > 0;
}

Result<BaseImage> ImageSources::Load(const std::string& ref, const image::Platform& platform,
                                     const std::string& work_dir) const {
  auto it = sources_.find(NormalizeReference(ref));
  if (it == sources_.end()) {
    return Error("no source for the image \"" + ref +
                     "\": map it with --image-source " + ref +
                     "=oci-layout:PATH[:TAG] (or =docker-archive:PATH), or in the --config file",
                 ENOENT);
  }
  BaseImage img;
  img.reference = ref;
  img.source = it->second;
  const std::string& src = it->second;
  auto fail = [&](Error e) { return std::move(e.AddContext("image " + ref + " (" + src + ")")); };
  if (src.rfind("oci-layout:", 0) == 0) {
    std::string rest = src.substr(11);
    std::string tag;
    const std::size_t colon = rest.find(':');
    if (colon != std::string::npos) {
      tag = rest.substr(colon + 1);
      rest = rest.substr(0, colon);
    }
    auto layout = image::OciLayout::Open(rest);
    if (!layout.ok()) return fail(std::move(layout).error());
    auto resolved = layout->Resolve(tag, platform);
    if (!resolved.ok()) return fail(std::move(resolved).error());
    img.config = resolved->config;
    for (std::size_t i = 0; i < resolved->manifest.layers.size(); ++i) {
      const image::Descriptor& d = resolved->manifest.layers[i];
      Layer l;
      l.diff_id = img.config.diff_ids[i];
      l.blob_path = layout->BlobPath(d.digest);
      l.digest = d.digest;
      l.media_type = d.media_type;
      l.size = d.size;
      // The blob's digest is checked where its bytes are used (VerifyLayer), not here: a base
      // already unpacked in the cache is never read again.
      if (d.media_type == image::kMediaTypeLayer) l.tar_path = l.blob_path;
      img.layers.push_back(std::move(l));
    }
    return img;
  }
  std::string rest = src.substr(15);
  std::string selector;
  const std::size_t colon = rest.find(':');
  if (colon != std::string::npos) {
    selector = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  auto archive = image::ReadDockerArchive(rest, selector, work_dir);
  if (!archive.ok()) return fail(std::move(archive).error());
  img.config = archive->config;
  for (std::size_t i = 0; i < archive->layer_files.size(); ++i) {
    Layer l;
    l.diff_id = img.config.diff_ids[i];
    l.blob_path = archive->layer_files[i];
    auto digest = image::Sha256File(l.blob_path);
    if (!digest.ok()) return fail(std::move(digest).error());
    l.digest = *digest;
    l.media_type = MediaTypeOf(l.blob_path);
    struct stat st;
    if (stat(l.blob_path.c_str(), &st) == 0) l.size = st.st_size;
    if (l.media_type == image::kMediaTypeLayer) l.tar_path = l.blob_path;
    img.layers.push_back(std::move(l));
  }
  return img;
}

Result<void> VerifyLayer(const Layer& layer) {
  if (layer.digest.empty()) return Ok{};
  SLIPWAY_ASSIGN_OR_RETURN(std::string digest, image::Sha256File(layer.blob_path));
  if (digest != layer.digest) {
    return Error("layer blob " + layer.blob_path + " has digest " + digest + ", not the " +
                     layer.digest + " its manifest names",
                 EINVAL);
  }
  return Ok{};
}

}  // namespace slipway::executor
