#define _GNU_SOURCE
#include "cfilesystem.h"
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

dev_t iotkube_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }

int iotkube_lsetxattr(const char *path, const char *name, const void *value, size_t size) {
    return lsetxattr(path, name, value, size, 0);
}

ssize_t iotkube_lgetxattr(const char *path, const char *name, void *value, size_t size) {
    return lgetxattr(path, name, value, size);
}

int iotkube_syncfs(int fd) { return syncfs(fd); }
