#define _GNU_SOURCE
#include "cruntime.h"
#include "internal.h"
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

int iotkube_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int iotkube_is_cgroup2(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return info.f_type == CGROUP2_SUPER_MAGIC;
}

void iotkube_limit_malloc_arenas(int arenas) {
    mallopt(M_ARENA_MAX, arenas);
}

void iotkube_release_free_heap(void) {
    malloc_trim(0);
}

int iotkube_is_namespace_file(const char *path) {
    struct statfs info;
    if (statfs(path, &info) != 0) return -1;
    return info.f_type == NSFS_MAGIC;
}

int iotkube_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

void iotkube_spawnattr_default_signals(posix_spawnattr_t *attributes) {
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(attributes, &none);
    posix_spawnattr_setsigdefault(attributes, &all);
    short flags = 0;
    posix_spawnattr_getflags(attributes, &flags);
    posix_spawnattr_setflags(attributes, flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

int iotkube_socketpair_cloexec(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }

int iotkube_receive_descriptor(int socket, int timeout_ms) {
    struct pollfd ready = { .fd = socket, .events = POLLIN };
    int polled;
    do { polled = poll(&ready, 1, timeout_ms); } while (polled < 0 && errno == EINTR);
    if (polled == 0) { errno = ETIMEDOUT; return -1; }
    if (polled < 0) return -1;
    char data[256];
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec vector = { .iov_base = data, .iov_len = sizeof data };
    struct msghdr message = { .msg_iov = &vector, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    ssize_t received;
    do { received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); } while (received < 0 && errno == EINTR);
    if (received < 0) return -1;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS && header->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(header), sizeof fd);
            return fd;
        }
    }
    errno = ENODATA;
    return -1;
}

/* The kernel's struct sigaction for rt_sigaction (glibc's refuses the signals it reserves). */
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    unsigned long mask;
};

void iotkube_reset_signals(void) {
    /* Every disposition to its default, every signal unblocked: what the agent ignores
     * (SIGPIPE), what its threads block, and what glibc or the host reserves and ignores
     * (32, 33) must not reach a container's process. Handlers do not survive exec; ignored
     * and blocked signals do. */
    struct kernel_sigaction action = { SIG_DFL, 0, NULL, 0 };
    for (int signal = 1; signal <= 64; signal++) {
        if (signal == SIGKILL || signal == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, signal, &action, NULL, sizeof action.mask);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

unsigned long long iotkube_start_ticks(pid_t pid) {
    char path[64], text[1024] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0) close(fd);
    text[n > 0 ? n : 0] = 0;
    char *cursor = strrchr(text, ')');
    if (!cursor) return 0;
    /* After the comm: state is field 3; starttime is field 22. */
    for (int field = 3; field <= 22 && cursor; field++) cursor = strchr(cursor + 1, ' ');
    return cursor ? strtoull(cursor + 1, NULL, 10) : 0;
}

/* --- writing files, and descriptors a helper process must not keep ----------------------------- */

int iotkube_runtime_linked(void) { return 1; }

ssize_t iotkube_write_all(int fd, const void *buffer, size_t length) {
    const char *cursor = buffer;
    size_t left = length;
    while (left > 0) {
        ssize_t n = write(fd, cursor, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        cursor += n;
        left -= (size_t)n;
    }
    return (ssize_t)length;
}

int iotkube_write_file_atomic(const char *path, const char *content) {
    char temporary[4200];
    snprintf(temporary, sizeof temporary, "%s.tmp-%d", path, (int)getpid());
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    if (iotkube_write_all(fd, content, strlen(content)) < 0 || fsync(fd) != 0) { close(fd); unlink(temporary); return -1; }
    close(fd);
    if (rename(temporary, path) != 0) { unlink(temporary); return -1; }
    return 0;
}

/* Closes every descriptor above 2 except `keep`: whatever the caller leaked (a test's pipe, a
 * terminal) must not be held open for the container's whole life. */
void iotkube_close_inherited(int keep) {
    if (keep > 3) syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U);
    syscall(SYS_close_range, (unsigned)(keep >= 3 ? keep + 1 : 3), ~0U, 0U);
}
