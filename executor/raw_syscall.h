// Raw Linux system calls for code that runs between clone and exec.
//
// Each function enters the kernel directly (no libc wrapper) and returns the kernel's result:
// >= 0 on success, -errno on failure. Nothing here touches errno (thread-local and shared with the
// parent under CLONE_VM), takes a lock, allocates, or broadcasts credential changes to other
// threads the way glibc's setuid()/setgroups() wrappers do.
//
// Guarantees: async-signal-safe, allocation-free, usable in a CLONE_VM child. x86_64 and aarch64.
#ifndef SLIPWAY_EXECUTOR_RAW_SYSCALL_H_
#define SLIPWAY_EXECUTOR_RAW_SYSCALL_H_

#include <sys/syscall.h>

namespace slipway::executor::raw {

#if defined(__x86_64__)
inline long Syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
inline long Syscall6(long n, long a1, long a2, long a3, long a4, long a5, long a6) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  register long x4 __asm__("x4") = a5;
  register long x5 __asm__("x5") = a6;
  __asm__ volatile("svc 0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}
#else
#error "raw syscalls are implemented for x86_64 and aarch64 only"
#endif

template <typename A = long, typename B = long, typename C = long, typename D = long,
          typename E = long, typename F = long>
inline long Call(long n, A a = 0, B b = 0, C c = 0, D d = 0, E e = 0, F f = 0) {
  return Syscall6(n, (long)a, (long)b, (long)c, (long)d, (long)e, (long)f);
}

}  // namespace slipway::executor::raw

#endif  // SLIPWAY_EXECUTOR_RAW_SYSCALL_H_
