// renameat2 FLAG OLD NEW: calls renameat2(2), which Debian 12's mv cannot,
// so the mount tests can compare RENAME_NOREPLACE and RENAME_EXCHANGE.
// FLAG is "noreplace", "exchange" or "none". Prints strerror on failure.

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: renameat2 noreplace|exchange|none OLD NEW\n");
    return 2;
  }
  unsigned flags = 0;
  if (std::strcmp(argv[1], "noreplace") == 0) flags = RENAME_NOREPLACE;
  if (std::strcmp(argv[1], "exchange") == 0) flags = RENAME_EXCHANGE;
  if (syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3], flags) != 0) {
    std::printf("renameat2: %s\n", std::strerror(errno));
    return 1;
  }
  return 0;
}
