#define _GNU_SOURCE
#include "cruntime.h"
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

int iotkube_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int iotkube_is_cgroup2(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return info.f_type == CGROUP2_SUPER_MAGIC;
}

int iotkube_is_namespace_file(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return info.f_type == NSFS_MAGIC;
}

int iotkube_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}
