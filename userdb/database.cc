#include "userdb/database.h"

#include <array>
#include <cstring>

namespace slipway::userdb {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsBlank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (IsBlank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits `line` on ':' into exactly N fields. Returns the number of fields found (which may be
// more than N; then `fields` holds only the first N).
template <std::size_t N>
std::size_t SplitFields(std::string_view line, std::array<std::string_view, N>& fields) {
  std::size_t count = 0;
  const char* p = line.data();
  const char* end = p + line.size();
  for (;;) {
    const char* colon = static_cast<const char*>(std::memchr(p, ':', end - p));
    const char* field_end = colon ? colon : end;
    if (count < N) fields[count] = std::string_view(p, field_end - p);
    ++count;
    if (!colon) return count;
    p = colon + 1;
  }
}

// Calls on_line(line_number, line) for every line that is neither blank nor a comment, and
// on_bad(line_number, reason) for lines that cannot be fields at all (too long, NUL byte).
template <typename OnLine, typename OnBad>
void ForEachLine(std::string_view text, std::size_t max_line, OnLine on_line, OnBad on_bad) {
  std::size_t number = 0;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    ++number;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    const char* line_end = nl ? nl : end;
    std::string_view raw(p, line_end - p);
    p = nl ? nl + 1 : end;
    if (raw.size() > max_line) {
      on_bad(number, "line is " + std::to_string(raw.size()) + " bytes, longer than the limit of " +
                         std::to_string(max_line));
      continue;
    }
    std::string_view line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    if (std::memchr(line.data(), '\0', line.size()) != nullptr) {
      on_bad(number, "line contains a NUL byte");
      continue;
    }
    on_line(number, line);
  }
}

// An upper bound on the entries: one per line. Reserving once avoids regrowing (and copying) the
// entry vector, which dominated parse time on a 10 MiB file.
std::size_t CountLines(std::string_view text) {
  std::size_t n = 1;
  const char* p = text.data();
  const char* end = p + text.size();
  while ((p = static_cast<const char*>(std::memchr(p, '\n', end - p))) != nullptr) {
    ++n;
    ++p;
  }
  return n;
}

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 64)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

}  // namespace

std::string ParseWarning::ToString() const {
  return file + ":" + std::to_string(line) + ": skipped: " + reason;
}

bool ParseId(std::string_view text, std::uint32_t* id) {
  if (text.empty() || text.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > kMaxId) return false;
  *id = static_cast<std::uint32_t>(v);
  return true;
}

bool GroupEntry::HasMember(std::string_view user) const {
  if (user.empty()) return false;
  // Search for the name itself (memmem is far faster than splitting every member) and accept a
  // hit only if, blanks aside, it spans a whole member: a list edge or ',' on both sides.
  const char* begin = members.data();
  const char* end = begin + members.size();
  const char* from = begin;
  while (from < end) {
    const char* hit = static_cast<const char*>(memmem(from, end - from, user.data(), user.size()));
    if (hit == nullptr) return false;
    const char* l = hit;
    while (l > begin && IsBlank(l[-1])) --l;
    const char* r = hit + user.size();
    while (r < end && IsBlank(*r)) ++r;
    if ((l == begin || l[-1] == ',') && (r == end || *r == ',')) return true;
    from = hit + 1;
  }
  return false;
}

void DatabaseBase::Warn(std::size_t line, std::string reason) {
  ++skipped_;
  if (warnings_.size() < kMaxStoredWarnings) {
    warnings_.push_back(ParseWarning{file_, line, std::move(reason)});
  }
}

Passwd Passwd::Parse(std::string text, std::string file) {
  Passwd db(std::move(text), std::move(file));
  db.entries_.reserve(CountLines(*db.text_));
  auto bad = [&db](std::size_t n, std::string reason) { db.Warn(n, std::move(reason)); };
  ForEachLine(
      *db.text_, kMaxPasswdLineBytes,
      [&](std::size_t n, std::string_view line) {
        std::array<std::string_view, 7> f;
        std::size_t count = SplitFields(line, f);
        if (count != 7) {
          return bad(n, std::to_string(count) +
                            " fields, expected 7 (name:password:uid:gid:gecos:home:shell)");
        }
        PasswdEntry e;
        e.name = f[0];
        if (e.name.empty()) return bad(n, "empty user name");
        if (!ParseId(f[2], &e.uid))
          return bad(n, "uid " + Quoted(f[2]) + " is not a decimal in 0..2147483647");
        if (!ParseId(f[3], &e.gid))
          return bad(n, "gid " + Quoted(f[3]) + " is not a decimal in 0..2147483647");
        e.gecos = f[4];
        e.home = f[5];
        e.shell = f[6];
        e.line = n;
        db.entries_.push_back(e);
      },
      bad);
  return db;
}

Group Group::Parse(std::string text, std::string file) {
  Group db(std::move(text), std::move(file));
  db.entries_.reserve(CountLines(*db.text_));
  auto bad = [&db](std::size_t n, std::string reason) { db.Warn(n, std::move(reason)); };
  ForEachLine(
      *db.text_, kMaxGroupLineBytes,
      [&](std::size_t n, std::string_view line) {
        std::array<std::string_view, 4> f;
        std::size_t count = SplitFields(line, f);
        if (count != 4)
          return bad(n, std::to_string(count) + " fields, expected 4 (name:password:gid:members)");
        GroupEntry e;
        e.name = f[0];
        if (e.name.empty()) return bad(n, "empty group name");
        if (!ParseId(f[2], &e.gid))
          return bad(n, "gid " + Quoted(f[2]) + " is not a decimal in 0..2147483647");
        e.members = f[3];
        e.line = n;
        db.entries_.push_back(e);
      },
      bad);
  return db;
}

const PasswdEntry* Passwd::FindByName(std::string_view name) const {
  for (const PasswdEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const PasswdEntry* Passwd::FindByUid(std::uint32_t uid) const {
  for (const PasswdEntry& e : entries_) {
    if (e.uid == uid) return &e;
  }
  return nullptr;
}

const GroupEntry* Group::FindByName(std::string_view name) const {
  for (const GroupEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const GroupEntry* Group::FindByGid(std::uint32_t gid) const {
  for (const GroupEntry& e : entries_) {
    if (e.gid == gid) return &e;
  }
  return nullptr;
}

}  // namespace slipway::userdb
