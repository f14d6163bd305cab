// Deliberately calls NSS: nss_symbols_test checks that its detector finds these references.
#include <grp.h>
#include <pwd.h>
#include <sys/types.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  passwd* pw = getpwnam(argv[1]);
  gid_t groups[8];
  int n = 8;
  if (pw) getgrouplist(argv[1], pw->pw_gid, groups, &n);
  std::printf("%d\n", pw ? n : -1);
  return 0;
}
