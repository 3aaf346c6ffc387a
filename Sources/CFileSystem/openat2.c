#define _GNU_SOURCE
#include "cfilesystem.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

int iotkube_openat2(int directory, const char *path, int flags, mode_t mode, unsigned long long resolve) {
    struct open_how how = { .flags = (unsigned long long)flags | O_CLOEXEC, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof how);
}
