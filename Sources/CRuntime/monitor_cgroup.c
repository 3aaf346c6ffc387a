#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The monitor's cgroup work beyond writing cgroup.procs: a systemd scope for the init (the
 * systemd driver), and the container's OOM kills, counted while its cgroup exists (systemd
 * removes a scope's cgroup as soon as its last process has exited). */

int iotkube_place_in_scope(const struct plan *p, pid_t child, char *error, size_t error_size) {
    struct iotkube_unit_property properties[26];
    int count = 0;
    for (int i = 0; i < p->unit_property_count && count < 25; i++) properties[count++] = p->unit_properties[i];
    properties[count++] = (struct iotkube_unit_property){ "PIDs", 'p', NULL, (unsigned long long)child, 0 };
    int started = iotkube_systemd_start_transient_unit(p->systemd_scope, properties, count, error, error_size);
    if (started == 1) {
        snprintf(error, error_size, "systemd already has a unit %s (a container of that name exists)", p->systemd_scope);
        return -2;
    }
    if (started == 0 && iotkube_wait_for_cgroup((long long)child, p->systemd_cgroup, 10000) == 0) return 0;
    if (started == 0) snprintf(error, error_size, "systemd did not move the container into %s (cgroup %s) within 10 s", p->systemd_scope, p->systemd_cgroup);
    /* The start job may still be queued with the pid: stop it while the pid cannot be reused
     * (the caller kills the child but reaps it only after this). */
    char ignored[256];
    iotkube_systemd_stop_unit(p->systemd_scope, ignored, sizeof ignored);
    return -1;
}

int iotkube_parent_memory_events_open(const char *path) {
    if (!path) return -1;
    char parent[4096];
    size_t length = strlen(path);
    if (length >= sizeof parent) return -1;
    memcpy(parent, path, length + 1);
    /* <parent>/<container>/memory.events -> <parent>/memory.events */
    char *file = strrchr(parent, '/');
    if (!file || file == parent) return -1;
    *file = 0;
    char *container = strrchr(parent, '/');
    if (!container || container == parent) return -1;
    snprintf(container, sizeof parent - (size_t)(container - parent), "/memory.events");
    return iotkube_memory_events_open(parent);
}

int iotkube_memory_events_open(const char *path) {
    if (!path) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && iotkube_oom_kills(fd) < 0) { close(fd); return -1; }
    return fd;
}

long long iotkube_oom_kills(int fd) {
    char content[2048];
    ssize_t n = pread(fd, content, sizeof content - 1, 0);   /* a read also re-arms poll's POLLPRI */
    if (n <= 0) return -1;
    content[n] = 0;
    const char *line = strstr(content, "oom_kill ");
    if (line && line != content && line[-1] != '\n') line = strstr(line, "\noom_kill ");
    if (!line) return 0;
    if (*line == '\n') line++;
    return strtoll(line + 9, NULL, 10);
}
