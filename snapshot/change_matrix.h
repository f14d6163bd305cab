// The change matrix shared by the snapshot strategies' tests: a "before" tree, and every kind
// of change a build step makes (create, modify with the mtime put back, chmod, delete, delete a
// tree, delete and recreate, replace a directory, file or symlink by another type, hardlinks,
// xattrs, empty directories, FIFOs). Test-only.
#ifndef SLIPWAY_SNAPSHOT_CHANGE_MATRIX_H_
#define SLIPWAY_SNAPSHOT_CHANGE_MATRIX_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "snapshot/layer_writer.h"

namespace slipway::snapshot::testing {

struct Case {
  const char* name;
  std::function<void(const std::string&)> before;
  std::function<void(const std::string&)> change;
  std::vector<LayerEntry> expect;  // the walk's expected entries; empty: not checked
  bool inode_dependent = false;    // the walk's result depends on inode reuse
};

// Everything that must match between two trees: types, modes, owners, times (seconds), sizes,
// contents, link targets, xattrs.
// `with_times`: include mtimes (seconds). Trees changed in two separate runs compare without them:
// entries made "now" may straddle a second.
std::map<std::string, std::string> Describe(const std::string& root, bool with_times = true);
void Base(const std::string& root);
void SetMtime(const std::string& path, long sec);
const std::vector<Case>& ChangeMatrix();

}  // namespace slipway::snapshot::testing

#endif  // SLIPWAY_SNAPSHOT_CHANGE_MATRIX_H_
