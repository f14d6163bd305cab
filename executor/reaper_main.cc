// The reaper binary: the spawn library's start-up hook turns a process started as
// "slipway-reaper <sealed memfd>" into the pid-namespace reaper before main() runs; main() is
// reached only when someone starts this binary by hand.
#include <cstdio>

int main() {
  std::fputs("slipway-reaper: started only by slipway, as pid 1 of a build step\n", stderr);
  return 127;
}
