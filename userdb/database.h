// Parsers for an image's /etc/passwd and /etc/group.
//
// Slipway answers "who is USER x in this image?" from the image's own files, never through libc
// NSS (which reads the host's databases and can crash in a static binary). These parsers are pure
// functions over text:
//
//   Passwd pw = Passwd::Parse(std::move(text), "/etc/passwd");
//   if (const PasswdEntry* e = pw.FindByName("nobody")) ...
//   for (const ParseWarning& w : pw.warnings()) log(w.ToString());
//
// Rules (stricter than moby, close to glibc's nss_files):
//   - blank lines and lines starting with '#' (after leading blanks) are skipped silently;
//   - a trailing "\r" (CRLF files) and surrounding blanks are ignored;
//   - a passwd line needs exactly 7 fields, a group line exactly 4; ids are plain decimals in
//     0..2^31-1; the name must be non-empty; a line containing a NUL byte, or longer than the
//     line cap (passwd 64 KiB, group 1 MiB), is malformed. Malformed lines are skipped and
//     reported as warnings with their line number -- never aliased to id 0;
//   - lookups return the first matching entry;
//   - group members are compared exactly after trimming blanks ("bob" never matches "bobby").
//
// Guarantees: no syscalls, no exceptions; entries are views into the database's own copy of the
// text, valid for the database's lifetime (moving a database keeps them valid). Thread-compatible.
#ifndef SLIPWAY_USERDB_DATABASE_H_
#define SLIPWAY_USERDB_DATABASE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace slipway::userdb {

inline constexpr std::uint32_t kMaxId = 2147483647u;           // 2^31-1, as moby and the kernel ABI
inline constexpr std::size_t kMaxFileBytes = 10u << 20;        // 10 MiB, as moby and BuildKit
inline constexpr std::size_t kMaxPasswdLineBytes = 64u << 10;  // 64 KiB
inline constexpr std::size_t kMaxGroupLineBytes = 1u << 20;    // 1 MiB (long member lists)
inline constexpr std::size_t kMaxStoredWarnings = 100;         // the rest are only counted

struct ParseWarning {
  std::string file;
  std::size_t line = 0;
  std::string reason;
  // "/etc/group:12: skipped: 3 fields, expected 4"
  std::string ToString() const;
};

struct PasswdEntry {
  std::string_view name;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string_view gecos;
  std::string_view home;
  std::string_view shell;
  std::size_t line = 0;
};

struct GroupEntry {
  std::string_view name;
  std::uint32_t gid = 0;
  std::string_view members;  // the raw comma-separated list; see HasMember
  std::size_t line = 0;

  // True if `user` is listed exactly (after trimming blanks around each member).
  bool HasMember(std::string_view user) const;
};

// Parses a decimal id in 0..kMaxId: digits only, no sign, no blanks. Returns false otherwise.
bool ParseId(std::string_view text, std::uint32_t* id);

// Common state of both databases: the owned text, warnings, and the skipped-line count.
class DatabaseBase {
 public:
  const std::string& file() const { return file_; }
  const std::vector<ParseWarning>& warnings() const { return warnings_; }
  // Every malformed line, including those past kMaxStoredWarnings.
  std::size_t skipped_lines() const { return skipped_; }

 protected:
  DatabaseBase(std::string text, std::string file)
      : text_(std::make_unique<std::string>(std::move(text))), file_(std::move(file)) {}
  void Warn(std::size_t line, std::string reason);

  std::unique_ptr<std::string> text_;  // heap-held so views survive moves of the database
  std::string file_;
  std::vector<ParseWarning> warnings_;
  std::size_t skipped_ = 0;
};

class Passwd : public DatabaseBase {
 public:
  // `file` names the source in warnings (e.g. "/etc/passwd").
  static Passwd Parse(std::string text, std::string file = "/etc/passwd");

  const std::vector<PasswdEntry>& entries() const { return entries_; }
  const PasswdEntry* FindByName(std::string_view name) const;
  const PasswdEntry* FindByUid(std::uint32_t uid) const;

 private:
  using DatabaseBase::DatabaseBase;
  std::vector<PasswdEntry> entries_;
};

class Group : public DatabaseBase {
 public:
  static Group Parse(std::string text, std::string file = "/etc/group");

  const std::vector<GroupEntry>& entries() const { return entries_; }
  const GroupEntry* FindByName(std::string_view name) const;
  const GroupEntry* FindByGid(std::uint32_t gid) const;

 private:
  using DatabaseBase::DatabaseBase;
  std::vector<GroupEntry> entries_;
};

}  // namespace slipway::userdb

#endif  // SLIPWAY_USERDB_DATABASE_H_
