/*
 * Pod sandboxes without a process: `__iotkube-sandbox create DIR HOSTNAME` makes new network,
 * IPC and UTS namespaces and holds them with bind mounts at DIR/net, DIR/ipc and DIR/uts (as
 * `ip netns add` does), with the hostname set and the loopback interface up. Every container of
 * the pod joins them by path. `__iotkube-sandbox remove DIR` unmounts and deletes them; the
 * namespaces end when their last user goes. Runs single-threaded, before the Swift runtime.
 */
#define _GNU_SOURCE
#include "internal.h"
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kinds[] = { "net", "ipc", "uts" };

static void release(const char *directory) {
    char path[4200];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", directory, kinds[i]);
        umount2(path, MNT_DETACH);
        unlink(path);
    }
}

static int loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strcpy(request.ifr_name, "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &request);
    if (rc == 0) {
        request.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &request);
    }
    close(fd);
    return rc;
}

static int create(const char *directory, const char *hostname) {
    if (mkdir(directory, 0700) != 0 && errno != EEXIST) { fprintf(stderr, "sandbox %s: %s\n", directory, strerror(errno)); return 1; }
    char path[4200];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", directory, kinds[i]);
        int fd = open(path, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0400);
        if (fd < 0) {
            fprintf(stderr, "sandbox %s: %s: %s\n", directory, kinds[i], errno == EEXIST ? "already exists (a sandbox is there)" : strerror(errno));
            if (errno != EEXIST) release(directory);
            return 1;
        }
        close(fd);
    }
    if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) != 0) {
        fprintf(stderr, "sandbox %s: unshare: %s\n", directory, strerror(errno));
        release(directory);
        return 1;
    }
    if (hostname && *hostname && sethostname(hostname, strlen(hostname)) != 0) {
        fprintf(stderr, "sandbox %s: hostname %s: %s\n", directory, hostname, strerror(errno));
        release(directory);
        return 1;
    }
    if (loopback_up() != 0) {
        fprintf(stderr, "sandbox %s: bringing up lo: %s\n", directory, strerror(errno));
        release(directory);
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        char source[64];
        snprintf(source, sizeof source, "/proc/self/ns/%s", kinds[i]);
        snprintf(path, sizeof path, "%s/%s", directory, kinds[i]);
        if (mount(source, path, NULL, MS_BIND, NULL) != 0) {
            fprintf(stderr, "sandbox %s: holding the %s namespace: %s\n", directory, kinds[i], strerror(errno));
            release(directory);
            return 1;
        }
    }
    return 0;
}

int iotkube_sandbox_main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[2], "create")) return create(argv[3], argv[4]);
    if (argc == 4 && !strcmp(argv[2], "remove")) {
        release(argv[3]);
        if (rmdir(argv[3]) != 0 && errno != ENOENT) { fprintf(stderr, "sandbox %s: %s\n", argv[3], strerror(errno)); return 1; }
        return 0;
    }
    fprintf(stderr, "usage: %s create DIR HOSTNAME | %s remove DIR\n", IOTKUBE_SANDBOX_ARGUMENT, IOTKUBE_SANDBOX_ARGUMENT);
    return 2;
}
