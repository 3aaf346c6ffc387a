#define _GNU_SOURCE
#include "cfilesystem.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(IOTKUBE_O_PATH == O_PATH, "O_PATH");
_Static_assert(IOTKUBE_RESOLVE_IN_ROOT == RESOLVE_IN_ROOT && IOTKUBE_RESOLVE_BENEATH == RESOLVE_BENEATH, "RESOLVE_*");
_Static_assert(IOTKUBE_RESOLVE_NO_SYMLINKS == RESOLVE_NO_SYMLINKS && IOTKUBE_RESOLVE_NO_MAGICLINKS == RESOLVE_NO_MAGICLINKS, "RESOLVE_*");

int iotkube_openat2(int directory, const char *path, int flags, mode_t mode, unsigned long long resolve) {
    struct open_how how = { .flags = (unsigned long long)flags | O_CLOEXEC, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof how);
}

int iotkube_mount_id(int fd, unsigned long long *id) {
    struct statx info;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &info) == 0 && (info.stx_mask & STATX_MNT_ID)) {
        *id = info.stx_mnt_id;
        return 0;
    }
    /* Kernels before 5.8: the descriptor's fdinfo has carried mnt_id since 3.15. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *file = fopen(path, "re");
    if (!file) return -1;
    char line[256];
    int found = -1;
    while (fgets(line, sizeof line, file)) {
        if (sscanf(line, "mnt_id: %llu", id) == 1) { found = 0; break; }
    }
    fclose(file);
    if (found != 0) errno = ENOSYS;
    return found;
}
