// Lists the symbol names an ELF64 file references or defines (.symtab and .dynsym), so a test can
// prove that a binary never touches libc NSS. Test-only; reads the whole file into memory.
#ifndef SLIPWAY_USERDB_ELF_SYMBOLS_H_
#define SLIPWAY_USERDB_ELF_SYMBOLS_H_

#include <set>
#include <string>

namespace slipway::userdb {

// Returns every symbol name in the file's symbol tables. Sets *error and returns an empty set if
// the file is not a readable ELF64 file.
std::set<std::string> ElfSymbolNames(const std::string& path, std::string* error);

// True if the file asks for a dynamic loader (has a PT_INTERP program header).
bool ElfHasInterpreter(const std::string& path, std::string* error);

}  // namespace slipway::userdb

#endif  // SLIPWAY_USERDB_ELF_SYMBOLS_H_
