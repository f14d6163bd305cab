// Slipway never uses libc NSS: this test reads the symbol tables of the userdb binaries and fails
// if any NSS lookup function is referenced (or, in the static CLI, linked in).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/test_util.h"
#include "userdb/elf_symbols.h"

namespace slipway::userdb {
namespace {

const char* const kNssFunctions[] = {
    "getpwnam",   "getpwuid",   "getgrnam",   "getgrgid",   "getgrouplist",
    "initgroups", "getpwent",   "getgrent",   "getpwnam_r", "getpwuid_r",
    "getgrnam_r", "getgrgid_r", "getpwent_r", "getgrent_r",
};

std::vector<std::string> NssReferences(const std::string& path) {
  std::string error;
  std::set<std::string> names = ElfSymbolNames(path, &error);
  REQUIRE_MESSAGE(error.empty(), error);
  REQUIRE(!names.empty());
  std::vector<std::string> found;
  for (const char* f : kNssFunctions) {
    if (names.count(f)) found.push_back(f);
  }
  return found;
}

TEST_CASE("userdb: the detector finds NSS references in a binary that has them") {
  auto found = NssReferences(testing::Runfile("userdb/nss_positive_fixture"));
  CHECK(found == std::vector<std::string>{"getpwnam", "getgrouplist"});
}

TEST_CASE("userdb: no userdb binary references libc NSS") {
  for (const char* bin : {"userdb/slipway-id", "userdb/slipway-id-static", "userdb/resolve_test",
                          "userdb/database_test", "userdb/cli_test"}) {
    CAPTURE(bin);
    CHECK(NssReferences(testing::Runfile(bin)).empty());
  }
}

TEST_CASE("userdb: the static CLI really is static (no dynamic loader), the other is not") {
  std::string error;
  CHECK_FALSE(ElfHasInterpreter(testing::Runfile("userdb/slipway-id-static"), &error));
  CHECK(ElfHasInterpreter(testing::Runfile("userdb/slipway-id"), &error));
  CHECK(error.empty());
  // A static binary carries libc itself, so libc's own functions are defined in it.
  std::set<std::string> names =
      ElfSymbolNames(testing::Runfile("userdb/slipway-id-static"), &error);
  REQUIRE(error.empty());
  CHECK(names.count("memcpy"));
}

}  // namespace
}  // namespace slipway::userdb
