#ifndef IOTKUBE_CFILESYSTEM_H
#define IOTKUBE_CFILESYSTEM_H
#include <sys/types.h>
#include <stddef.h>

/// makedev(3), a macro in glibc.
dev_t iotkube_makedev(unsigned int major, unsigned int minor);
/// lsetxattr(2): sets an extended attribute without following a final symlink.
int iotkube_lsetxattr(const char *path, const char *name, const void *value, size_t size);
/// lgetxattr(2); returns the length or -1.
ssize_t iotkube_lgetxattr(const char *path, const char *name, void *value, size_t size);
/// syncfs(2): flushes the file system holding `fd`.
int iotkube_syncfs(int fd);

/// openat2(2) with `resolve` flags (IOTKUBE_RESOLVE_*); O_CLOEXEC is always added.
/// Resolves `path` relative to `directory` without leaving it, as the flags demand.
int iotkube_openat2(int directory, const char *path, int flags, mode_t mode, unsigned long long resolve);
/// The id of the mount `fd` lies on (statx STATX_MNT_ID, else /proc/self/fdinfo); -1 with errno when unknown.
int iotkube_mount_id(int fd, unsigned long long *id);
/// O_PATH (glibc hides it from Swift without _GNU_SOURCE); checked against <fcntl.h> in openat2.c.
#define IOTKUBE_O_PATH 010000000
/// The RESOLVE_* flags of <linux/openat2.h>, for Swift.
#define IOTKUBE_RESOLVE_NO_XDEV 0x01ULL
#define IOTKUBE_RESOLVE_NO_MAGICLINKS 0x02ULL
#define IOTKUBE_RESOLVE_NO_SYMLINKS 0x04ULL
#define IOTKUBE_RESOLVE_BENEATH 0x08ULL
#define IOTKUBE_RESOLVE_IN_ROOT 0x10ULL
/// O_PATH of <fcntl.h> (hidden from Swift without _GNU_SOURCE); the same on every Linux port
/// iotkube builds for.
#define IOTKUBE_O_PATH 010000000

#endif
