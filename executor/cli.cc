#include "executor/cli.h"

#include "dockerfile/instructions.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

namespace slipway::executor {
namespace {

Error Usage(const std::string& msg) { return Error(msg + " (see slipway --help)", EINVAL); }

Result<bool> ParseBool(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return Usage(flag + "=" + v + ": expected true or false");
}

Result<std::pair<std::string, std::string>> KeyValue(const std::string& flag, const std::string& v) {
  const std::size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0) return Usage(flag + " " + v + ": expected KEY=VALUE");
  return std::make_pair(v.substr(0, eq), v.substr(eq + 1));
}

}  // namespace

const char* HelpText() {
  return R"(slipway: build a container image from a Dockerfile, without a daemon.

Usage: slipway [flags]

Every RUN step runs in a chroot of the stage's own root directory, in new mount, pid, uts and ipc
namespaces, as the Dockerfile's USER (uid, gid and supplementary groups from the image's own
/etc/passwd and /etc/group), with a seccomp filter. Slipway needs root (or CAP_SYS_ADMIN and
CAP_SYS_CHROOT in its user namespace).

Inputs
  -c, --context URL             the build context: dir://PATH, a plain PATH, tar://PATH (plain or
                                compressed), tar://stdin, or git://HOST/PATH[#REF[#COMMIT]]
                                (cloned over https, http if GIT_PULL_METHOD=http; credentials
                                from GIT_USERNAME/GIT_PASSWORD or GIT_TOKEN) (default dir://.)
      --context-sub-path DIR    build with this directory of the context as the context
      --git OPTIONS             for git contexts: branch=NAME, single-branch=true,
                                recurse-submodules=true, insecure-skip-tls=true (comma-separated)
  -f, --dockerfile PATH         the Dockerfile, relative to the context or absolute
                                (default Dockerfile); <Dockerfile>.dockerignore or the context's
                                .dockerignore is honoured
      --build-arg KEY=VALUE     a build argument (repeatable); KEY alone takes $KEY
      --target STAGE            build up to this stage (default: the last)
      --label KEY=VALUE         a label for the image (repeatable)
      --custom-platform OS/ARCH the platform to build for and to pick from base images
                                (default linux/amd64)
      --ignore-path PATH        leave this path out of every snapshot (repeatable)
      --image-source REF=SRC    where a base image comes from (repeatable):
                                SRC is oci-layout:PATH[:TAG] or docker-archive:PATH[:NAME:TAG];
                                "ubuntu" matches ubuntu:latest and docker.io/library/ubuntu
      --config FILE             a YAML file with an "image-sources:" mapping of the same form
      --secret id=ID,src=FILE   a secret for RUN --mount=type=secret (repeatable);
                                id=ID,env=VAR reads it from the environment variable VAR
      --ssh ID=SOCKET           an SSH agent for RUN --mount=type=ssh,id=ID (repeatable); ID
                                alone (e.g. default) uses $SSH_AUTH_SOCK

Outputs
  -d, --destination NAME:TAG    push the image there (repeatable; after every other output is
                                written; also the tags of --tar-path's image)
      --no-push                 do not push (write the outputs below only)
      --tar-path FILE           a docker-archive tarball (docker load, podman load, skopeo)
      --oci-layout-path DIR     an OCI image layout (an existing layout is replaced once the new
                                one is complete)
      --digest-file FILE        write the image's manifest digest
      --image-name-with-digest-file FILE
                                write NAME@DIGEST for every --destination

Build
      --snapshot-mode MODE      auto (overlayfs when possible, else a metadata walk), overlay or
                                walk; kaniko's full, redo and time mean auto (every mode here
                                is complete)
      --single-snapshot         one layer per stage instead of one per step
      --reproducible            timestamps from SOURCE_DATE_EPOCH or 0: identical inputs give a
                                byte-identical image (the SOURCE_DATE_EPOCH build arg or
                                environment variable alone clamps timestamps too)
      --compression gzip|zstd   layer compression (default gzip)
      --compression-level N     gzip 1-9 (default 6), zstd 1-19 (default 3)
      --seccomp-profile FILE    a Docker seccomp profile (JSON or YAML) for RUN steps, or
                                "unconfined" (default: Slipway's built-in profile)
      --work-dir DIR            where the temporary build directory goes (default $TMPDIR or
                                /var/tmp); it is always removed at the end
      --cache-dir DIR           where base images are kept unpacked between builds (by layer
                                digest, read-only lowers of each stage's overlay) and where
                                RUN --mount=type=cache directories live (default
                                /var/cache/slipway, or ~/.cache/slipway when not root);
                                nothing is evicted automatically: delete DIR/base to reclaim
      --cleanup                 accepted for kaniko compatibility: Slipway always cleans up

Logging
      --verbosity LEVEL         panic, fatal, error, warn, info (default), debug or trace
      --log-format FORMAT       text (default), color or json (one JSON object per line)

Registries (base images not mapped by --image-source are pulled; --destination is pushed;
credentials come from the docker config.json in $DOCKER_CONFIG or ~/.docker)
      --insecure                plain http for every registry (also --insecure-pull)
      --insecure-registry HOST  plain http for this registry (repeatable)
      --skip-tls-verify         https without certificate checks (also --skip-tls-verify-pull)
      --registry-certificate HOST=FILE
                                trust the CAs in FILE for HOST (repeatable)
      --registry-mirror HOST    try this mirror first for docker.io pulls (repeatable)
      --registry-map FROM=TO[;FROM=TO]
                                use registry TO instead of FROM
      --push-retry N            retries of a failed push request (default 0)
      --image-download-retry N  retries of a failed pull request (default 0)

Layer cache
      --cache                   reuse the layers of earlier builds: a step whose inputs (the
                                base, the expanded instruction, its environment and user, and
                                for COPY/ADD the names, modes, owners and contents of every
                                source) are unchanged is not run; its stored layer is used as is
      --cache-repo REPO         where layers are kept: a registry repository, or oci:PATH
                                (default: <first --destination>/cache)
      --cache-ttl DURATION      entries older than this are not used (default 336h)

  -h, --help                    this text
      --version                 the version

Exit status: 0 on success; a failed RUN's own exit status (128+N when killed by signal N);
1 for any other build error; 2 for a bad command line.
)";
}

Result<void> ParseCommandLine(int argc, const char* const* argv, CliOptions* out,
                              const std::function<const char*(const char*)>& env) {
  BuildRequest& r = out->request;
  r.cache_dir = geteuid() == 0 ? "/var/cache/slipway"
                               : std::string(env("HOME") ? env("HOME") : "/tmp") + "/.cache/slipway";
  if (const char* t = env("TMPDIR"); t && *t) r.work_dir = t;
  static const std::set<std::string> kBool = {"no-push",      "reproducible", "single-snapshot",
                                              "cleanup",      "help",         "version",
                                              "insecure",     "skip-tls-verify", "cache",
                                              "insecure-pull", "skip-tls-verify-pull"};
  static const std::map<std::string, std::string> kShort = {
      {"c", "context"}, {"f", "dockerfile"}, {"d", "destination"}, {"h", "help"}};
  std::vector<std::string> config_files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string name, value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      name = arg.substr(2);
    } else if (arg.size() >= 2 && arg[0] == '-') {
      auto it = kShort.find(arg.substr(1, 1));
      if (it == kShort.end()) return Usage("unknown flag " + arg);
      name = it->second;
      if (arg.size() > 2) {
        value = arg.substr(arg[2] == '=' ? 3 : 2);
        has_value = true;
      }
    } else {
      return Usage("unexpected argument \"" + arg + "\": Slipway takes flags only");
    }
    if (!has_value) {
      const std::size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
    }
    static const std::set<std::string> kValued = {
        "context", "context-sub-path", "git", "dockerfile", "build-arg", "target", "label", "custom-platform",
        "ignore-path", "image-source", "config", "secret", "ssh", "destination", "tar-path",
        "oci-layout-path", "digest-file", "image-name-with-digest-file", "snapshot-mode",
        "compression", "compression-level", "seccomp-profile", "work-dir", "cache-dir",
        "verbosity", "log-format", "cache-repo", "cache-ttl", "insecure-registry",
        "registry-mirror", "registry-map", "push-retry", "registry-certificate",
        "image-download-retry"};
    if (!kBool.count(name) && !kValued.count(name)) return Usage("unknown flag --" + name);
    const bool is_bool = kBool.count(name) > 0;
    if (!has_value && !is_bool) {
      if (i + 1 >= argc) return Usage("--" + name + " needs a value");
      value = argv[++i];
      has_value = true;
    }
    bool on = true;
    if (is_bool && has_value) {
      SLIPWAY_ASSIGN_OR_RETURN(on, ParseBool("--" + name, value));
    }
    const std::string flag = "--" + name;
    if (name == "help") {
      out->help = on;
    } else if (name == "version") {
      out->version = on;
    } else if (name == "context") {
      r.context = value;
    } else if (name == "context-sub-path") {
      r.context_sub_path = value;
    } else if (name == "git") {
      auto parsed = ParseGitOptions(value, &r.git);
      if (!parsed.ok()) return Usage(parsed.error().message());
    } else if (name == "dockerfile") {
      r.dockerfile = value;
    } else if (name == "build-arg") {
      const std::size_t eq = value.find('=');
      if (eq == 0 || value.empty()) return Usage("--build-arg " + value + ": expected KEY=VALUE");
      if (eq == std::string::npos) {
        if (const char* v = env(value.c_str())) r.build_args[value] = v;
      } else {
        r.build_args[value.substr(0, eq)] = value.substr(eq + 1);
      }
    } else if (name == "target") {
      r.target = value;
    } else if (name == "label") {
      SLIPWAY_ASSIGN_OR_RETURN(auto kv, KeyValue(flag, value));
      r.labels[kv.first] = kv.second;
    } else if (name == "custom-platform") {
      if (value.find('/') == std::string::npos) {
        return Usage(flag + " " + value + ": expected OS/ARCH[/VARIANT], e.g. linux/amd64");
      }
      r.platform = value;
    } else if (name == "ignore-path") {
      r.ignore_paths.push_back(value);
    } else if (name == "image-source") {
      auto a = r.sources.Add(value);
      if (!a.ok()) return Usage(a.error().message());
    } else if (name == "config") {
      config_files.push_back(value);
    } else if (name == "secret") {
      std::string id, src, envvar;
      std::size_t start = 0;
      while (start <= value.size()) {
        std::size_t comma = value.find(',', start);
        const std::string part =
            value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const std::size_t eq = part.find('=');
        const std::string k = part.substr(0, eq);
        const std::string v = eq == std::string::npos ? "" : part.substr(eq + 1);
        if (k == "id") {
          id = v;
        } else if (k == "src" || k == "source") {
          src = v;
        } else if (k == "env") {
          envvar = v;
        } else {
          return Usage(flag + " " + value + ": unknown key \"" + k + "\" (id, src, env)");
        }
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (id.empty() || (src.empty() == envvar.empty())) {
        return Usage(flag + " " + value + ": expected id=ID,src=FILE or id=ID,env=VAR");
      }
      if (!envvar.empty()) {
        // The value is written to a private file in the work directory when the build starts.
        const char* v = env(envvar.c_str());
        if (!v) return Usage(flag + " " + value + ": $" + envvar + " is not set");
        r.secret_values[id] = v;
      } else {
        r.secrets[id] = src;
      }
    } else if (name == "ssh") {
      // ID=SOCKET, or ID alone for $SSH_AUTH_SOCK (docker build --ssh).
      const std::size_t eq = value.find('=');
      const std::string id = value.substr(0, eq);
      std::string sock = eq == std::string::npos ? "" : value.substr(eq + 1);
      if (eq == std::string::npos) {
        const char* v = env("SSH_AUTH_SOCK");
        if (!v || !*v) return Usage(flag + " " + value + ": $SSH_AUTH_SOCK is not set (give ID=SOCKET)");
        sock = v;
      }
      if (id.empty() || sock.empty()) return Usage(flag + " " + value + ": expected ID=SOCKET or ID");
      r.ssh_agents[id] = sock;
    } else if (name == "cache") {
      r.cache = on;
    } else if (name == "cache-repo") {
      r.cache_repo = value;
    } else if (name == "cache-ttl") {
      auto d = dockerfile::ParseDuration(value);
      if (!d.ok() || *d <= 0) return Usage(flag + " " + value + ": expected a duration like 336h or 30m");
      r.cache_ttl = *d / 1000000000;
    } else if (name == "insecure" || name == "insecure-pull") {
      r.registry.insecure = r.registry.insecure || on;
    } else if (name == "skip-tls-verify" || name == "skip-tls-verify-pull") {
      r.registry.skip_tls_verify = r.registry.skip_tls_verify || on;
    } else if (name == "insecure-registry") {
      r.registry.insecure_registries.insert(value);
    } else if (name == "registry-certificate") {
      SLIPWAY_ASSIGN_OR_RETURN(auto kv, KeyValue(flag, value));
      r.registry.ca_files[kv.first] = kv.second;
    } else if (name == "registry-mirror") {
      r.registry.mirrors.push_back(value);
    } else if (name == "registry-map") {
      // kaniko's form: "index.docker.io=mirror.example;other=else".
      std::size_t start = 0;
      while (start <= value.size()) {
        const std::size_t semi = value.find(';', start);
        const std::string one = value.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
        SLIPWAY_ASSIGN_OR_RETURN(auto kv, KeyValue(flag, one));
        std::string from = kv.first;
        if (from == "index.docker.io" || from == "registry-1.docker.io") from = "docker.io";
        r.registry.registry_map[from] = kv.second;
        if (semi == std::string::npos) break;
        start = semi + 1;
      }
    } else if (name == "push-retry" || name == "image-download-retry") {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (!end || *end || n < 0 || n > 100) return Usage(flag + " " + value + ": expected 0-100");
      (name == "push-retry" ? r.push_retry : r.pull_retry) = static_cast<int>(n);
    } else if (name == "destination") {
      r.destinations.push_back(value);
    } else if (name == "no-push") {
      r.no_push = on;
    } else if (name == "tar-path") {
      r.tar_path = value;
    } else if (name == "oci-layout-path") {
      r.oci_layout_path = value;
    } else if (name == "digest-file") {
      r.digest_file = value;
    } else if (name == "image-name-with-digest-file") {
      r.image_name_with_digest_file = value;
    } else if (name == "snapshot-mode") {
      if (value == "auto" || value == "full" || value == "redo" || value == "time") {
        r.snapshot_mode = snapshot::Strategy::kAuto;
      } else if (value == "overlay") {
        r.snapshot_mode = snapshot::Strategy::kOverlay;
      } else if (value == "walk") {
        r.snapshot_mode = snapshot::Strategy::kWalk;
      } else {
        return Usage(flag + " " + value + ": expected auto, overlay or walk");
      }
    } else if (name == "single-snapshot") {
      r.single_snapshot = on;
    } else if (name == "reproducible") {
      r.reproducible = on;
    } else if (name == "compression") {
      if (value == "gzip") {
        r.compression = snapshot::Compression::kGzip;
      } else if (value == "zstd") {
        r.compression = snapshot::Compression::kZstd;
      } else {
        return Usage(flag + " " + value + ": expected gzip or zstd");
      }
    } else if (name == "compression-level") {
      char* end = nullptr;
      const long l = std::strtol(value.c_str(), &end, 10);
      if (!end || *end || l < 1 || l > 19) return Usage(flag + " " + value + ": expected 1-19");
      r.compression_level = static_cast<int>(l);
    } else if (name == "seccomp-profile") {
      r.seccomp_profile = value;
    } else if (name == "work-dir") {
      r.work_dir = value;
    } else if (name == "cache-dir") {
      r.cache_dir = value;
    } else if (name == "cleanup") {
      // Always done.
    } else if (name == "verbosity") {
      auto v = ParseVerbosity(value);
      if (!v.ok()) return Usage(v.error().message());
      out->verbosity = *v;
    } else if (name == "log-format") {
      auto v = ParseLogFormat(value);
      if (!v.ok()) return Usage(v.error().message());
      out->log_format = *v;
    } else {
      return Usage("unknown flag --" + name);
    }
  }
  if (r.compression_level > 9 && r.compression == snapshot::Compression::kGzip) {
    return Usage("--compression-level " + std::to_string(r.compression_level) +
                 ": gzip levels are 1-9");
  }
  for (const std::string& f : config_files) {
    auto c = r.sources.LoadConfig(f);
    if (!c.ok()) return Usage("--config " + c.error().message());
  }
  return Ok{};
}

}  // namespace slipway::executor
