/* The container's setup, run in the child the monitor cloned with the new namespaces (the file
 * system part is in rootfs.c).
 * Order (DESIGN §5): cgroup placement (the monitor, before "go"), joined namespaces, mounts,
 * devices, sysctls, pivot_root, masked and read-only paths, hostname, rlimits, groups/uid/gid,
 * capabilities, cwd, umask, no_new_privs, wait for `start`, seccomp last, execve. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <grp.h>

int iotkube_setup_report_fd = -1;

/* exec: errors and the "ready" byte go to the caller over this socket. */
void iotkube_exec_child_setup(int sync_fd) { iotkube_setup_report_fd = sync_fd; }

void iotkube_fail(int fd, const char *format, ...) {
    char message[1024];
    message[0] = 'E';
    va_list args;
    va_start(args, format);
    int length = vsnprintf(message + 1, sizeof message - 1, format, args);
    va_end(args);
    if (length < 0) length = 0;
    if (length > (int)sizeof message - 2) length = (int)sizeof message - 2;
    iotkube_write_all(fd, message, (size_t)length + 1);
    _exit(1);
}

#define FAIL(...) iotkube_fail(iotkube_setup_report_fd, __VA_ARGS__)

/* The highest capability this kernel knows (libcap's own probe may not have run: our entry is a
 * constructor too). */
static int last_capability(void) {
    int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
    char text[16] = "";
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof text - 1);
        close(fd);
        if (n > 0) { text[n] = 0; return atoi(text); }
    }
    for (int cap = 63; cap >= 0; cap--) if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0) return cap;
    return 40;
}

static void set_capabilities(struct plan *p) {
    if (!p->has_caps) return;
    int last = last_capability();
    for (int cap = 0; cap <= last; cap++) {
        if (!(p->caps[0] & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
            FAIL("dropping capability %d from the bounding set: %s", cap, strerror(errno));
    }
}

static void set_user_and_capabilities(struct plan *p) {
    if (setgroups((size_t)p->group_count, (gid_t *)p->groups) != 0) FAIL("setgroups: %s", strerror(errno));
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) FAIL("keepcaps: %s", strerror(errno));
    if (setresgid(p->gid, p->gid, p->gid) != 0) FAIL("setgid %u: %s", p->gid, strerror(errno));
    if (setresuid(p->uid, p->uid, p->uid) != 0) FAIL("setuid %u: %s", p->uid, strerror(errno));
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (!p->has_caps) return;
    cap_t caps = cap_init();
    if (!caps) FAIL("capabilities: %s", strerror(errno));
    int last = last_capability();
    cap_flag_t flags[3] = { CAP_EFFECTIVE, CAP_INHERITABLE, CAP_PERMITTED };
    for (int set = 0; set < 3; set++) {
        for (int cap = 0; cap <= last && cap < 64; cap++) {
            if (p->caps[set + 1] & (1ULL << cap)) {
                cap_value_t value = cap;
                cap_set_flag(caps, flags[set], 1, &value, CAP_SET);
            }
        }
    }
    if (cap_set_proc(caps) != 0) FAIL("setting capabilities: %s", strerror(errno));
    cap_free(caps);
    cap_reset_ambient();
    for (int cap = 0; cap <= last && cap < 64; cap++) {
        if ((p->caps[4] & (1ULL << cap)) && cap_set_ambient(cap, CAP_SET) != 0)
            FAIL("ambient capability %d: %s", cap, strerror(errno));
    }
}

static void load_seccomp(int fd) {
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) || st.st_size > 1 << 20)
        FAIL("seccomp: bad filter file");
    struct sock_filter *filter = malloc((size_t)st.st_size);
    if (!filter || pread(fd, filter, (size_t)st.st_size, 0) != st.st_size) FAIL("seccomp: cannot read the filter");
    struct sock_fprog program = { .len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter)), .filter = filter };
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0) != 0) FAIL("seccomp: loading the filter: %s", strerror(errno));
    close(fd);
}

/* execvp with the container's PATH (not the host's). */
static void execute(struct plan *p) __attribute__((noreturn));
static void execute(struct plan *p) {
    const char *program = p->args[0];
    char *const *argv = (char *const *)p->args;
    char *const *envp = (char *const *)p->env;
    if (strchr(program, '/')) {
        execve(program, argv, envp);
        FAIL("exec %s: %s", program, strerror(errno));
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (int i = 0; i < p->env_count; i++) if (!strncmp(p->env[i], "PATH=", 5)) path = p->env[i] + 5;
    int last_error = ENOENT;
    while (*path) {
        const char *end = strchr(path, ':');
        size_t length = end ? (size_t)(end - path) : strlen(path);
        char candidate[4096];
        if (length + strlen(program) + 2 < sizeof candidate) {
            snprintf(candidate, sizeof candidate, "%.*s/%s", (int)length, length ? path : ".", program);
            execve(candidate, argv, envp);
            if (errno != ENOENT && errno != ENOTDIR) last_error = errno;
        }
        if (!end) break;
        path = end + 1;
    }
    errno = last_error;
    FAIL("exec %s: %s (searched PATH=%s)", program, strerror(last_error), path);
}

/* What a new process needs once it sees the container's filesystem: identity, capabilities,
 * cwd, umask, no_new_privs, then (after `start`) seccomp and execve. Shared with exec. */
void iotkube_process_setup_and_exec(struct plan *p, int fifo_fd, int seccomp_fd) {
    for (int i = 0; i < p->rlimit_count; i++) {
        struct rlimit limit = { p->rlimit_soft[i], p->rlimit_hard[i] };
        if (setrlimit(p->rlimit_resources[i], &limit) != 0) FAIL("rlimit %d: %s", p->rlimit_resources[i], strerror(errno));
    }
    if (p->has_oom_score_adj) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        char value[32];
        int n = snprintf(value, sizeof value, "%d", p->oom_score_adj);
        /* Lowering the score needs CAP_SYS_RESOURCE; without it (a confined agent) the process
         * keeps the score it inherited, as crun does, instead of failing to start. */
        if (fd < 0 || (iotkube_write_all(fd, value, (size_t)n) < 0 && !((errno == EACCES || errno == EPERM) && p->oom_score_adj < 0)))
            FAIL("oom_score_adj: %s", strerror(errno));
        if (fd >= 0) close(fd);
    }
    /* Without no_new_privs a filter needs CAP_SYS_ADMIN to load: load it while we still have
     * it (the filter then also governs the setuid/capset calls that follow, as in runc). */
    if (!p->no_new_privileges) { load_seccomp(seccomp_fd); seccomp_fd = -1; }
    set_capabilities(p);
    set_user_and_capabilities(p);
    if (p->cwd && chdir(p->cwd) != 0) FAIL("cwd %s: %s", p->cwd, strerror(errno));
    if (p->has_umask) umask((mode_t)p->umask_value);
    if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) FAIL("no_new_privs: %s", strerror(errno));
    if (fifo_fd >= 0) {
        /* Created: tell the monitor, then block until `start` opens the fifo's other end. */
        if (iotkube_write_all(iotkube_setup_report_fd, "R", 1) < 0) _exit(1);
        char path[64];
        iotkube_fd_path(fifo_fd, path, sizeof path);
        int writer = open(path, O_WRONLY | O_CLOEXEC);
        if (writer < 0) FAIL("waiting for start: %s", strerror(errno));
        close(fifo_fd);
        /* Started (`start` opened the reading end): startContainer hooks, inside the container,
         * before its process; the byte goes only after them, so `start` runs the poststart
         * hooks after every startContainer hook has finished. */
        char error[700];
        if (iotkube_run_hooks(p, "s", "created", p->host_pid, error, sizeof error) != 0) {
            dprintf(2, "iotkube: %s\n", error);
            _exit(127);
        }
        if (iotkube_write_all(writer, "0", 1) < 0) FAIL("waiting for start: %s", strerror(errno));
        close(writer);
    } else if (iotkube_write_all(iotkube_setup_report_fd, "R", 1) < 0) {
        _exit(1);
    }
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    iotkube_reset_signals();
    load_seccomp(seccomp_fd);
    execute(p);
}

/* process.terminal: a pty from the container's own devpts instance becomes the controlling
 * terminal and stdio; its master goes to the console socket (SCM_RIGHTS, with the pty's path as
 * the message, as runc sends it). */
void iotkube_setup_terminal(struct plan *p, int console_fd, int wait_for_start) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) FAIL("terminal: opening /dev/ptmx: %s", strerror(errno));
    if (unlockpt(master) != 0) FAIL("terminal: unlockpt: %s", strerror(errno));
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) FAIL("terminal: opening the pty: %s", strerror(errno));
    if (fchown(slave, p->uid, (gid_t)-1) != 0) FAIL("terminal: chown: %s", strerror(errno));
    char name[64] = "/dev/ptmx";
    ptsname_r(master, name, sizeof name);
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec data = { .iov_base = name, .iov_len = strlen(name) };
    struct msghdr message = { .msg_iov = &data, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &master, sizeof(int));
    if (sendmsg(console_fd, &message, MSG_NOSIGNAL) < 0) FAIL("terminal: sending the pty master to the console socket: %s", strerror(errno));
    close(master);
    /* exec: the receiver sets the terminal's size first, then sends a byte (or closes). */
    if (wait_for_start) {
        char start = 0;
        ssize_t n;
        while ((n = read(console_fd, &start, 1)) < 0 && errno == EINTR) {}
        if (n != 1 || start != 1) FAIL("terminal: the caller went away before the command started");
    }
    close(console_fd);
    if (setsid() < 0) FAIL("terminal: setsid: %s", strerror(errno));
    if (ioctl(slave, TIOCSCTTY, 0) != 0) FAIL("terminal: TIOCSCTTY: %s", strerror(errno));
    for (int fd = 0; fd < 3; fd++) if (dup2(slave, fd) < 0) FAIL("terminal: dup2: %s", strerror(errno));
    if (slave > 2) close(slave);
}

/* The runtime's hooks (the monitor runs them while we wait), then createContainer hooks here,
 * in the container's namespaces before pivot_root. */
static void run_creation_hooks(struct plan *p, int sync_fd) {
    if (iotkube_has_hooks(p, "pr")) {
        if (iotkube_write_all(sync_fd, "H", 1) < 0) _exit(1);
        char reply = 0;
        if (read(sync_fd, &reply, 1) != 1 || reply != 'c') _exit(1);
    }
    char error[700];
    if (iotkube_run_hooks(p, "c", "creating", p->host_pid, error, sizeof error) != 0) FAIL("%s", error);
}

void iotkube_container_init(struct plan *p, int sync_fd, int console_fd, int fifo_fd, int seccomp_fd) {
    iotkube_setup_report_fd = sync_fd;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* Nothing in the container may open this process through /proc while it runs host code. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    char go[32];
    ssize_t go_length = read(sync_fd, go, sizeof go - 1);   /* the monitor placed us in the cgroups */
    if (go_length < 1 || go[0] != 'g') _exit(1);
    go[go_length] = 0;
    p->host_pid = atoll(go + 1);
    if (p->new_cgroup_namespace && unshare(CLONE_NEWCGROUP) != 0) FAIL("cgroup namespace: %s", strerror(errno));
    int new_mount_namespace = 1;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < p->namespace_count; i++) {
            struct plan_namespace *ns = &p->namespaces[i];
            if (!*ns->path || ns->flag == CLONE_NEWPID) continue;
            if ((pass == 0) == (ns->flag == CLONE_NEWNS)) continue;   /* mount namespace last */
            int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, ns->flag) != 0) FAIL("joining namespace %s: %s", ns->path, strerror(errno));
            close(fd);
            if (ns->flag == CLONE_NEWNS) new_mount_namespace = 0;
        }
    }
    if (new_mount_namespace) {
        iotkube_setup_filesystem(p);
        run_creation_hooks(p, sync_fd);
        iotkube_enter_rootfs(p);
        iotkube_write_sysctls(p);   /* through the container's own /proc, before /proc/sys turns read-only */
        iotkube_mask_paths(p);
    }
    else run_creation_hooks(p, sync_fd);
    if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) != 0) FAIL("hostname %s: %s", p->hostname, strerror(errno));
    if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) != 0) FAIL("domainname: %s", strerror(errno));
    if (console_fd >= 0) iotkube_setup_terminal(p, console_fd, 0);
    iotkube_process_setup_and_exec(p, fifo_fd, seccomp_fd);
}
