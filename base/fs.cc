#include "base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

namespace slipway {

Result<std::vector<std::string>> ListDirectory(int dir_fd) {
  // fdopendir takes ownership of its fd: give it a fresh one.
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("opening the directory to list it");
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return ErrnoError("listing the directory");
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  closedir(d);
  return names;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError("reading " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ErrnoError("reading " + path);
  return ss.str();
}

Result<void> WriteFileAtomic(const std::string& path, const std::string& bytes, int mode) {
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("writing " + path);
  for (std::size_t off = 0; off < bytes.size();) {
    const ssize_t w = write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoError("writing " + path, e);
    }
    off += static_cast<std::size_t>(w);
  }
  if (close(fd) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return ErrnoError("writing " + path, e);
  }
  return Ok{};
}

}  // namespace slipway
