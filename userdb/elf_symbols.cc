#include "userdb/elf_symbols.h"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace slipway::userdb {

namespace {

bool Load(const std::string& path, std::vector<char>* data, Elf64_Ehdr* eh, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot open " + path;
    return false;
  }
  data->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (data->size() < sizeof(Elf64_Ehdr) || std::memcmp(data->data(), ELFMAG, SELFMAG) != 0 ||
      (*data)[EI_CLASS] != ELFCLASS64) {
    *error = path + " is not an ELF64 file";
    return false;
  }
  std::memcpy(eh, data->data(), sizeof(*eh));
  return true;
}

}  // namespace

bool ElfHasInterpreter(const std::string& path, std::string* error) {
  std::vector<char> data;
  Elf64_Ehdr eh;
  if (!Load(path, &data, &eh, error)) return false;
  for (std::size_t i = 0; i < eh.e_phnum; ++i) {
    std::size_t off = eh.e_phoff + i * sizeof(Elf64_Phdr);
    if (off + sizeof(Elf64_Phdr) > data.size()) break;
    Elf64_Phdr ph;
    std::memcpy(&ph, data.data() + off, sizeof(ph));
    if (ph.p_type == PT_INTERP) return true;
  }
  return false;
}

std::set<std::string> ElfSymbolNames(const std::string& path, std::string* error) {
  std::set<std::string> names;
  std::vector<char> data;
  Elf64_Ehdr eh;
  if (!Load(path, &data, &eh, error)) return names;
  auto section = [&](std::size_t i, Elf64_Shdr* out) {
    std::size_t off = eh.e_shoff + i * sizeof(Elf64_Shdr);
    if (off + sizeof(Elf64_Shdr) > data.size()) return false;
    std::memcpy(out, data.data() + off, sizeof(*out));
    return true;
  };
  bool found_table = false;
  for (std::size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!section(i, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)) continue;
    Elf64_Shdr strtab;
    if (!section(sh.sh_link, &strtab)) continue;
    found_table = true;
    for (std::size_t off = sh.sh_offset; off + sizeof(Elf64_Sym) <= sh.sh_offset + sh.sh_size &&
                                         off + sizeof(Elf64_Sym) <= data.size();
         off += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      std::memcpy(&sym, data.data() + off, sizeof(sym));
      std::size_t name_off = strtab.sh_offset + sym.st_name;
      if (sym.st_name == 0 || name_off >= data.size()) continue;
      const char* s = data.data() + name_off;
      names.insert(std::string(s, strnlen(s, data.size() - name_off)));
    }
  }
  if (!found_table) *error = path + " has no symbol table";
  return names;
}

}  // namespace slipway::userdb
