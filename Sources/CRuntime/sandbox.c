/*
 * Pod sandboxes without a process: new network, IPC and UTS namespaces held with bind mounts
 * at DIR/net, DIR/ipc and DIR/uts (as `ip netns add` does), with the hostname set and the
 * loopback interface up. Every container of the pod joins them by path; the namespaces end
 * when their last user goes after `iotkube_sandbox_remove`.
 *
 * Called from the agent's threads. The namespaces are made by a short-lived child cloned into
 * them (CLONE_VM | CLONE_VFORK, as posix_spawn does, so nothing of the parent is copied): it
 * sets the hostname, brings up lo, bind-mounts its own namespace files (it shares the agent's
 * mount namespace, so the mounts are the agent's) and exits. The child runs only system calls
 * on its own stack with every signal blocked, and reports a failure through memory it shares.
 * The calling thread's own namespaces never change.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *kinds[] = { "net", "ipc", "uts" };
static const char *own_namespaces[] = { "/proc/self/ns/net", "/proc/self/ns/ipc", "/proc/self/ns/uts" };

enum { PATH_SIZE = 4200, CHILD_STACK_SIZE = 64 * 1024 };

/* What the child needs and what it reports, in memory it shares with the caller. The mount
 * targets are the files the caller created, by descriptor (/proc/self/fd/N: the child has a
 * copy of the caller's descriptors), so nothing between creation and mount can redirect them. */
struct sandbox_child {
    char targets[3][32];
    const char *hostname;
    const char *failed;   /* the step that failed (a literal), NULL when all went well */
    int error;
};

static void release(const char *directory) {
    char path[PATH_SIZE];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", directory, kinds[i]);
        umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
        unlink(path);
    }
}

static int loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &request);
    if (rc == 0) {
        request.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &request);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int sandbox_child_main(void *argument) {
    struct sandbox_child *child = argument;
    size_t length = strlen(child->hostname);
    if (length > 0 && sethostname(child->hostname, length) != 0) {
        child->failed = "hostname";
        child->error = errno;
        _exit(1);
    }
    if (loopback_up() != 0) {
        child->failed = "bringing up lo";
        child->error = errno;
        _exit(1);
    }
    for (int i = 0; i < 3; i++) {
        if (mount(own_namespaces[i], child->targets[i], NULL, MS_BIND, NULL) != 0) {
            child->failed = i == 0 ? "holding the net namespace" : i == 1 ? "holding the ipc namespace" : "holding the uts namespace";
            child->error = errno;
            _exit(1);
        }
    }
    _exit(0);
}

int iotkube_sandbox_create(const char *directory, const char *hostname, char *message, unsigned long message_size) {
    if (message_size > 0) message[0] = 0;
    struct sandbox_child child;
    memset(&child, 0, sizeof child);
    child.hostname = hostname ? hostname : "";
    if (strlen(directory) + 5 >= PATH_SIZE) { snprintf(message, message_size, "sandbox %s: path too long", directory); return -1; }
    if (strlen(child.hostname) > 64) { snprintf(message, message_size, "sandbox %s: hostname longer than 64 bytes", directory); return -1; }
    if (mkdir(directory, 0700) != 0 && errno != EEXIST) { snprintf(message, message_size, "sandbox %s: %s", directory, strerror(errno)); return -1; }
    int directory_fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (directory_fd < 0) { snprintf(message, message_size, "sandbox %s: %s", directory, strerror(errno)); return -1; }
    int files[3] = { -1, -1, -1 };
    for (int i = 0; i < 3; i++) {
        files[i] = openat(directory_fd, kinds[i], O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (files[i] < 0) {
            int saved = errno;
            snprintf(message, message_size, "sandbox %s: %s: %s", directory, kinds[i], saved == EEXIST ? "already exists (a sandbox is there)" : strerror(saved));
            for (int j = 0; j < i; j++) close(files[j]);
            close(directory_fd);
            if (saved != EEXIST) release(directory);
            return -1;
        }
        snprintf(child.targets[i], sizeof child.targets[i], "/proc/self/fd/%d", files[i]);
    }
    close(directory_fd);
    void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        snprintf(message, message_size, "sandbox %s: child stack: %s", directory, strerror(errno));
        for (int i = 0; i < 3; i++) close(files[i]);
        release(directory);
        return -1;
    }
    /* No signal handler of the agent may run on the child's stack. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pid_t pid = clone(sandbox_child_main, (char *)stack + CHILD_STACK_SIZE,
                      CLONE_VM | CLONE_VFORK | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD, &child);
    int clone_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    int status = 0;
    if (pid > 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    munmap(stack, CHILD_STACK_SIZE);
    for (int i = 0; i < 3; i++) close(files[i]);
    if (pid < 0) {
        snprintf(message, message_size, "sandbox %s: new namespaces: %s", directory, strerror(clone_error));
        release(directory);
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || child.failed) {
        if (child.failed) snprintf(message, message_size, "sandbox %s: %s: %s", directory, child.failed, strerror(child.error));
        else snprintf(message, message_size, "sandbox %s: the namespace child ended with status %d", directory, status);
        release(directory);
        return -1;
    }
    return 0;
}

int iotkube_sandbox_remove(const char *directory, char *message, unsigned long message_size) {
    if (message_size > 0) message[0] = 0;
    if (strlen(directory) + 5 >= PATH_SIZE) { snprintf(message, message_size, "sandbox %s: path too long", directory); return -1; }
    release(directory);
    if (rmdir(directory) != 0 && errno != ENOENT) {
        snprintf(message, message_size, "sandbox %s: %s", directory, strerror(errno));
        return -1;
    }
    return 0;
}
