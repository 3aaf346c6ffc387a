#define _GNU_SOURCE
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

/* The socket's namespace is fixed when it is made: a thread that joins the pod's network
 * namespace makes it and ends; connect() then works from any thread. */
struct socket_job {
    int netns_fd;
    int family;
    int result;
    int error;
};

static void *make_socket(void *raw) {
    struct socket_job *job = raw;
    if (job->netns_fd >= 0 && setns(job->netns_fd, CLONE_NEWNET) != 0) {
        job->error = errno;
        job->result = -2;
        return NULL;
    }
    job->result = socket(job->family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (job->result < 0) job->error = errno;
    return NULL;
}

static int socket_in(int netns_fd, int family, char *error, size_t error_size) {
    struct socket_job job = {.netns_fd = netns_fd, .family = family, .result = -1, .error = 0};
    if (netns_fd < 0) {
        make_socket(&job);
    } else {
        /* It only calls setns and socket: a small stack (32-bit boards have little address space). */
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setstacksize(&attributes, 64 << 10);
        pthread_t thread;
        int failed = pthread_create(&thread, &attributes, make_socket, &job);
        pthread_attr_destroy(&attributes);
        if (failed != 0) {
            char reason[128];
            snprintf(error, error_size, "starting a thread to join the pod's network namespace: %s", strerror_r(failed, reason, sizeof reason));
            return -1;
        }
        pthread_join(thread, NULL);
    }
    char reason[128];
    if (job.result == -2) {
        snprintf(error, error_size, "joining the pod's network namespace: %s", strerror_r(job.error, reason, sizeof reason));
        return -1;
    }
    if (job.result < 0) snprintf(error, error_size, "making a socket: %s", strerror_r(job.error, reason, sizeof reason));
    return job.result;
}

/* 0 connected; else an errno value. */
static int connect_within(int fd, const struct sockaddr *address, socklen_t length, int timeout_ms) {
    if (connect(fd, address, length) == 0) return 0;
    if (errno != EINPROGRESS) return errno;
    struct pollfd watch = {.fd = fd, .events = POLLOUT};
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int ready, left = timeout_ms;
    /* An interrupted wait goes on with what is left of the timeout, not all of it again. */
    while ((ready = poll(&watch, 1, left)) < 0 && errno == EINTR) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long spent = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        left = spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
    }
    if (ready == 0) return ETIMEDOUT;
    if (ready < 0) return errno;
    int failure = 0;
    socklen_t size = sizeof failure;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &size) != 0) return errno;
    return failure;
}

int iotkube_connect_loopback_in_netns(const char *netns_path, uint16_t port, int timeout_ms, char *error, size_t error_size) {
    int netns_fd = -1;
    if (netns_path != NULL) {
        netns_fd = open(netns_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char reason[128] = "not a namespace";
        struct statfs info;
        int checked = netns_fd >= 0 ? fstatfs(netns_fd, &info) : -1;
        if (netns_fd < 0 || checked != 0) strerror_r(errno, reason, sizeof reason);
        if (netns_fd < 0 || checked != 0 || info.f_type != NSFS_MAGIC) {
            snprintf(error, error_size, "the pod's network namespace %s cannot be opened: %s", netns_path, reason);
            if (netns_fd >= 0) close(netns_fd);
            return -1;
        }
    }
    int result = -1;
    int first_failure = 0;
    for (int attempt = 0; attempt < 2 && result < 0; attempt++) {
        int family = attempt == 0 ? AF_INET : AF_INET6;
        int fd = socket_in(netns_fd, family, error, error_size);
        if (fd < 0) {
            if (attempt == 0) break;  // no namespace to be had: the message says why
            continue;                 // no IPv6 in the pod: the IPv4 failure stands
        }
        int failure;
        if (family == AF_INET) {
            struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            failure = connect_within(fd, (struct sockaddr *)&address, sizeof address, timeout_ms);
        } else {
            struct sockaddr_in6 address = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
            failure = connect_within(fd, (struct sockaddr *)&address, sizeof address, timeout_ms);
        }
        if (failure == 0) {
            result = fd;
        } else {
            close(fd);
            if (first_failure == 0) first_failure = failure;
            // Only a refusal is worth a second address; a timeout would double the wait.
            if (failure != ECONNREFUSED) break;
        }
    }
    char reason[128];
    if (result < 0 && first_failure != 0) snprintf(error, error_size, "connecting to localhost:%u: %s", (unsigned)port, strerror_r(first_failure, reason, sizeof reason));
    if (netns_fd >= 0) close(netns_fd);
    return result;
}

int iotkube_attach_connect(const char *state_directory) {
    int directory = open(state_directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0) return -1;
    /* Non-blocking: a monitor that does not accept (busy, stuck) fails the attach at once
     * (EAGAIN) instead of holding the caller. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { int saved = errno; close(directory); errno = saved; return -1; }
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    snprintf(address.sun_path, sizeof address.sun_path, "/proc/self/fd/%d/attach", directory);
    int rc = connect(fd, (struct sockaddr *)&address, sizeof address);
    int saved = errno;
    close(directory);
    if (rc != 0) { close(fd); errno = saved; return -1; }
    return fd;
}
