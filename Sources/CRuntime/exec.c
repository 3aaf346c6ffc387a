/* `__iotkube-exec`: a new process in a running container (runtime exec, exec probes and
 * hooks, kubectl exec): the container's cgroups, then its namespaces, then the process setup
 * shared with create. Single-threaded C, entered from the ELF constructor in monitor.c. */
#include "internal.h"
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* argv: __iotkube-exec PLAN [CONSOLE_FD]. With a console descriptor (a connected unix socket)
 * the process gets a terminal from the container's devpts and the master is sent there. */
/* Joins the cgroup of `procs` (its cgroup.procs file). On cgroup v2 a container that made
 * cgroups below its own and gave them controllers may hold no process itself (EBUSY): then the
 * cgroup its init is in, which must be below the container's, as runc does. */
static int join_cgroup(const char *procs, pid_t init) {
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    if (fd >= 0 && iotkube_write_all(fd, "0", 1) >= 0) { close(fd); return 0; }
    int saved = errno;
    if (fd >= 0) close(fd);
    if (saved != EBUSY) { errno = saved; return -1; }
    char path[64], line[4096] = "";
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)init);
    FILE *file = fopen(path, "re");
    if (!file) { errno = saved; return -1; }
    int found = 0;
    while (fgets(line, sizeof line, file)) if (!strncmp(line, "0::/", 4)) { found = 1; break; }
    fclose(file);
    line[strcspn(line, "\n")] = 0;
    const char *init_path = line + 3;                       /* "/kubepods/.../<id>/<below>" */
    size_t length = strlen(procs), suffix = strlen("/cgroup.procs");
    if (!found || length <= suffix || strstr(init_path, "/../") || strstr(init_path, "/..")) { errno = saved; return -1; }
    char directory[4096];
    snprintf(directory, sizeof directory, "%.*s", (int)(length - suffix), procs);
    /* The container's cgroup as "<mount><relative>": find the split where the init's path
     * continues the relative part below it. */
    for (char *slash = strchr(directory, '/'); slash; slash = strchr(slash + 1, '/')) {
        size_t relative = strlen(slash);
        if (strncmp(init_path, slash, relative) != 0 || init_path[relative] != '/') continue;
        char target[8300];
        snprintf(target, sizeof target, "%.*s%s/cgroup.procs", (int)(slash - directory), directory, init_path);
        fd = open(target, O_WRONLY | O_CLOEXEC);
        if (fd >= 0 && iotkube_write_all(fd, "0", 1) >= 0) { close(fd); return 0; }
        if (fd >= 0) close(fd);
        return -1;
    }
    errno = saved;
    return -1;
}

int iotkube_exec_main(int argc, char **argv) {
    if (argc < 3) return 2;
    int console_fd = argc >= 4 ? atoi(argv[3]) : -1;
    if (console_fd < 3) console_fd = -1;
    iotkube_close_inherited(console_fd);
    if (console_fd >= 0) fcntl(console_fd, F_SETFD, FD_CLOEXEC);
    struct plan plan;
    char *error = NULL;
    if (iotkube_plan_load(argv[2], &plan, &error) != 0) { fprintf(stderr, "exec: plan %s: %s\n", argv[2], error); return 1; }
    if (plan.join_pid <= 0) { fprintf(stderr, "exec: no container process\n"); return 1; }
    /* The filter is the host's file: open it before joining the container's mount namespace,
     * where the path would be resolved in (and planted by) the container. */
    int seccomp_fd = -1;
    if (plan.seccomp_path && (seccomp_fd = open(plan.seccomp_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0) {
        fprintf(stderr, "exec: seccomp filter %s: %s\n", plan.seccomp_path, strerror(errno));
        return 1;
    }
    /* cgroups first (our children inherit), then every namespace of the container. */
    for (int i = 0; i < plan.cgroup_procs_count; i++) {
        if (join_cgroup(plan.cgroup_procs[i], plan.join_pid) != 0) { fprintf(stderr, "exec: joining cgroup %s: %s\n", plan.cgroup_procs[i], strerror(errno)); return 1; }
    }
    const char *kinds[] = { "ipc", "uts", "net", "pid", "cgroup", "mnt" };
    int kind_flags[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWNS };
    int fds[6];
    for (int i = 0; i < 6; i++) {
        char path[64], mine[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)plan.join_pid, kinds[i]);
        snprintf(mine, sizeof mine, "/proc/self/ns/%s", kinds[i]);
        struct stat a, b;
        fds[i] = -1;
        if (stat(path, &a) != 0) { fprintf(stderr, "exec: container process %d is gone\n", (int)plan.join_pid); return 1; }
        if (stat(mine, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;   /* shared with the host */
        fds[i] = open(path, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) { fprintf(stderr, "exec: %s: %s\n", path, strerror(errno)); return 1; }
    }
    for (int i = 0; i < 6; i++) {
        if (fds[i] >= 0 && setns(fds[i], kind_flags[i]) != 0) { fprintf(stderr, "exec: joining %s namespace: %s\n", kinds[i], strerror(errno)); return 1; }
    }
    int sync[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) return 1;
    pid_t child = fork();
    if (child < 0) { fprintf(stderr, "exec: fork: %s\n", strerror(errno)); return 1; }
    if (child == 0) {
        close(sync[0]);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* Ends with the helper (killed when the caller gives up on it). */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        iotkube_exec_child_setup(sync[1]);
        if (console_fd >= 0) iotkube_setup_terminal(&plan, console_fd, 1);
        iotkube_process_setup_and_exec(&plan, -1, seccomp_fd);
    }
    close(sync[1]);
    if (console_fd >= 0) close(console_fd);
    char message[1100];
    ssize_t n;
    while ((n = recv(sync[0], message, sizeof message - 1, 0)) > 0) {
        if (message[0] == 'E') { message[n] = 0; fprintf(stderr, "exec: %s\n", message + 1); }
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

