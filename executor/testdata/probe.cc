// A small static program that reports what a spawned process sees. Tests run it inside roots that
// hold nothing else (it needs no libc at run time). Modes (argv[1]):
//   fds               the open fd numbers, one line: "0 1 2"
//   env               the environment, one entry per line
//   status            the Uid:, Gid: and Groups: lines of /proc/self/status
//   ids               "uid gid groups..." from the syscalls (works without /proc)
//   cwd               the working directory
//   pid               its pid
//   unshare           tries unshare(CLONE_NEWUTS); prints "ok" or the errno number
//   sigterm           prints "ready", waits; exits 42 on SIGTERM
//   daemon            starts a background child that sleeps forever, prints its pid, exits 0
//   daemon-setsid     the same, but the child leaves the process group (setsid)
//   orphan            makes an orphan that exits soon; prints "reaped" if it disappears
//   exit N / kill SIG exits with N / kills itself with SIG
//   sigdisp           prints "ignored" if SIGPIPE is ignored, else "default"
//   args ...          prints its arguments, one per line
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace {

void OnTerm(int) { _exit(42); }

int Main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* mode = argv[1];
  if (!std::strcmp(mode, "fds")) {
    bool first = true;
    for (int fd = 0; fd < 4096; ++fd) {
      if (fcntl(fd, F_GETFD) >= 0) {
        std::printf(first ? "%d" : " %d", fd);
        first = false;
      }
    }
    std::printf("\n");
  } else if (!std::strcmp(mode, "env")) {
    for (char** e = environ; *e; ++e) std::printf("%s\n", *e);
  } else if (!std::strcmp(mode, "status")) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 3;
    char line[4096];
    while (std::fgets(line, sizeof(line), f)) {
      if (!std::strncmp(line, "Uid:", 4) || !std::strncmp(line, "Gid:", 4) ||
          !std::strncmp(line, "Groups:", 7)) {
        std::fputs(line, stdout);
      }
    }
    std::fclose(f);
  } else if (!std::strcmp(mode, "ids")) {
    gid_t groups[256];
    int n = getgroups(256, groups);
    std::printf("%u %u", getuid(), getgid());
    for (int i = 0; i < n; ++i) std::printf(" %u", groups[i]);
    std::printf("\n");
  } else if (!std::strcmp(mode, "cwd")) {
    char buf[4096];
    std::printf("%s\n", getcwd(buf, sizeof(buf)) ? buf : "?");
  } else if (!std::strcmp(mode, "pid")) {
    std::printf("%d\n", getpid());
  } else if (!std::strcmp(mode, "unshare")) {
    if (unshare(CLONE_NEWUTS) == 0) {
      std::printf("ok\n");
    } else {
      std::printf("%d\n", errno);
    }
  } else if (!std::strcmp(mode, "sigterm")) {
    signal(SIGTERM, OnTerm);
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) pause();
  } else if (!std::strcmp(mode, "daemon") || !std::strcmp(mode, "daemon-setsid")) {
    pid_t p = fork();
    if (p == 0) {
      if (!std::strcmp(mode, "daemon-setsid")) setsid();
      for (;;) sleep(1000);
    }
    std::printf("%d\n", p);
    std::fflush(stdout);
  } else if (!std::strcmp(mode, "orphan")) {
    int fds[2];
    if (pipe(fds) != 0) return 3;
    pid_t a = fork();
    if (a == 0) {
      pid_t b = fork();
      if (b == 0) {
        usleep(50 * 1000);
        _exit(0);
      }
      if (write(fds[1], &b, sizeof(b)) != sizeof(b)) _exit(1);
      _exit(0);
    }
    pid_t b = 0;
    if (read(fds[0], &b, sizeof(b)) != sizeof(b)) return 3;
    waitpid(a, nullptr, 0);
    for (int i = 0; i < 100; ++i) {  // up to 2 s for the reaper to collect it
      usleep(20 * 1000);
      if (kill(b, 0) != 0 && errno == ESRCH) {
        std::printf("reaped\n");
        return 0;
      }
    }
    std::printf("zombie\n");
  } else if (!std::strcmp(mode, "exit") && argc > 2) {
    return std::atoi(argv[2]);
  } else if (!std::strcmp(mode, "kill") && argc > 2) {
    std::fflush(stdout);
    kill(getpid(), std::atoi(argv[2]));
    pause();
  } else if (!std::strcmp(mode, "sigdisp")) {
    struct sigaction sa;
    sigaction(SIGPIPE, nullptr, &sa);
    std::printf("%s\n", sa.sa_handler == SIG_IGN ? "ignored" : "default");
  } else if (!std::strcmp(mode, "args")) {
    for (int i = 2; i < argc; ++i) std::printf("%s\n", argv[i]);
  } else {
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
