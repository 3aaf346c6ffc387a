#define _GNU_SOURCE
#include "cfilesystem.h"
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <errno.h>
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
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &info) != 0) return -1;
    if (!(info.stx_mask & STATX_MNT_ID)) { errno = ENOSYS; return -1; }
    *id = info.stx_mnt_id;
    return 0;
}
