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

#endif
