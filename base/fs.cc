#include "base/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

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

}  // namespace slipway
