/* The container's setup, run in the child the monitor cloned with the new namespaces.
 * Order (DESIGN §5): cgroup placement (the monitor, before "go"), joined namespaces, mounts,
 * devices, sysctls, pivot_root, masked and read-only paths, hostname, rlimits, groups/uid/gid,
 * capabilities, cwd, umask, no_new_privs, wait for `start`, seccomp last, execve. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <grp.h>

static int report_fd = -1;

/* exec: errors and the "ready" byte go to the caller over this socket. */
void exec_child_setup(int sync_fd) { report_fd = sync_fd; }

void fail(int fd, const char *format, ...) {
    char message[1024];
    message[0] = 'E';
    va_list args;
    va_start(args, format);
    int length = vsnprintf(message + 1, sizeof message - 1, format, args);
    va_end(args);
    if (length < 0) length = 0;
    if (length > (int)sizeof message - 2) length = (int)sizeof message - 2;
    write_all(fd, message, (size_t)length + 1);
    _exit(1);
}

#define FAIL(...) fail(report_fd, __VA_ARGS__)

static int openat2_in_root(int root, const char *path, int flags) {
    struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
    return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

/* Creates `path` (a directory, or an empty file when !directory) inside the root, making the
 * parents, never leaving the root whatever symlinks the image holds. Returns an O_PATH fd. */
static int make_inside(int root, const char *path, int directory) {
    char buffer[4096];
    if (strlen(path) >= sizeof buffer) { errno = ENAMETOOLONG; return -1; }
    strcpy(buffer, path);
    for (char *slash = buffer + 1; ; slash++) {
        int last = *slash == 0;
        if (*slash == '/' || last) {
            char saved = *slash;
            *slash = 0;
            if (buffer[0] && strcmp(buffer, "/")) {
                int fd = openat2_in_root(root, buffer, O_PATH);
                if (fd < 0 && errno == ENOENT) {
                    char *name = strrchr(buffer, '/');
                    int parent;
                    if (name == buffer || !name) { parent = dup(root); name = buffer + (buffer[0] == '/'); }
                    else { *name = 0; parent = openat2_in_root(root, buffer, O_PATH | O_DIRECTORY); *name = '/'; name++; }
                    if (parent < 0) return -1;
                    int made;
                    if (!last || directory) made = mkdirat(parent, name, 0755);
                    else { int f = openat(parent, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644); made = f < 0 ? -1 : close(f); }
                    close(parent);
                    if (made != 0 && errno != EEXIST) return -1;
                    fd = openat2_in_root(root, buffer, O_PATH);
                }
                if (fd < 0) return -1;
                if (last) return fd;
                close(fd);
            }
            *slash = saved;
            if (last) break;
        }
    }
    return openat2_in_root(root, "/", O_PATH);
}

static void fd_path(int fd, char *out, size_t size) { snprintf(out, size, "/proc/self/fd/%d", fd); }

static unsigned long statvfs_flags(const char *path) {
    struct statvfs info;
    if (statvfs(path, &info) != 0) return 0;
    unsigned long flags = 0;
    if (info.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (info.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (info.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (info.f_flag & ST_RDONLY) flags |= MS_RDONLY;
    return flags;
}

static void do_mount(int root, struct plan_mount *m) {
    int bind = (m->flags & MS_BIND) != 0;
    int directory = 1;
    if (bind) {
        struct stat st;
        if (stat(m->source, &st) != 0) FAIL("mount %s: bind source %s: %s", m->destination, m->source, strerror(errno));
        directory = S_ISDIR(st.st_mode);
    }
    int target = make_inside(root, m->destination, directory);
    if (target < 0) FAIL("mount %s: cannot create the mount point: %s", m->destination, strerror(errno));
    char path[64];
    fd_path(target, path, sizeof path);
    const char *source = *m->source ? m->source : m->fstype;
    const char *data = *m->data ? m->data : NULL;
    if (bind) {
        if (mount(source, path, NULL, m->flags & (MS_BIND | MS_REC), NULL) != 0)
            FAIL("mount %s: bind %s: %s", m->destination, m->source, strerror(errno));
        unsigned long extra = m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_RELATIME | MS_STRICTATIME);
        if (extra) {
            /* A fresh fd: the bind mount now covers the old one. */
            close(target);
            target = openat2_in_root(root, m->destination, O_PATH);
            fd_path(target, path, sizeof path);
            if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | extra | statvfs_flags(path), NULL) != 0)
                FAIL("mount %s: remount with its options: %s", m->destination, strerror(errno));
        }
    } else if (mount(source, path, m->fstype, m->flags, data) != 0) {
        int code = errno;
        /* sysfs needs a network namespace of its own; share the host's read-only instead. */
        if (!strcmp(m->fstype, "sysfs") && (code == EPERM || code == EBUSY)) {
            if (mount("/sys", path, NULL, MS_BIND | MS_REC, NULL) != 0 ||
                mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
                FAIL("mount %s: sysfs: %s", m->destination, strerror(errno));
        } else {
            FAIL("mount %s (%s): %s", m->destination, m->fstype, strerror(code));
        }
    }
    if (m->propagation) {
        close(target);
        target = openat2_in_root(root, m->destination, O_PATH);
        fd_path(target, path, sizeof path);
        if (mount(NULL, path, NULL, m->propagation, NULL) != 0)
            FAIL("mount %s: propagation: %s", m->destination, strerror(errno));
    }
    close(target);
}

static void make_devices(int root, struct plan *p) {
    for (int i = 0; i < p->device_count; i++) {
        struct plan_device *d = &p->devices[i];
        char parent_path[4096];
        snprintf(parent_path, sizeof parent_path, "%s", d->path);
        char *slash = strrchr(parent_path, '/');
        if (!slash || !slash[1]) FAIL("device %s: not an absolute file path", d->path);
        *slash = 0;
        int parent = make_inside(root, parent_path[0] ? parent_path : "/", 1);
        if (parent < 0) FAIL("device %s: %s", d->path, strerror(errno));
        char parent_fd_path[64];
        fd_path(parent, parent_fd_path, sizeof parent_fd_path);
        int directory = open(parent_fd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(parent);
        if (directory < 0) FAIL("device %s: %s", d->path, strerror(errno));
        mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        unlinkat(directory, slash + 1, 0);
        if (mknodat(directory, slash + 1, type | (d->mode & 07777), makedev(d->major, d->minor)) != 0)
            FAIL("device %s: mknod: %s", d->path, strerror(errno));
        if (fchownat(directory, slash + 1, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) != 0)
            FAIL("device %s: chown: %s", d->path, strerror(errno));
        fchmodat(directory, slash + 1, d->mode & 07777, 0);
        close(directory);
    }
    for (int i = 0; i < p->symlink_count; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s%s", p->rootfs, p->symlink_paths[i]);
        /* Inside the fresh /dev tmpfs nothing can be a planted symlink; refuse one anyway. */
        struct stat st;
        if (lstat(full, &st) == 0) continue;
        if (symlink(p->symlink_targets[i], full) != 0 && errno != EEXIST)
            FAIL("symlink %s: %s", p->symlink_paths[i], strerror(errno));
    }
}

static void write_sysctls(struct plan *p) {
    for (int i = 0; i < p->sysctl_count; i++) {
        char path[512];
        int n = snprintf(path, sizeof path, "/proc/sys/");
        for (const char *c = p->sysctl_keys[i]; *c && n < (int)sizeof path - 1; c++) path[n++] = *c == '.' ? '/' : *c;
        path[n] = 0;
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write_all(fd, p->sysctl_values[i], strlen(p->sysctl_values[i])) < 0)
            FAIL("sysctl %s: %s", p->sysctl_keys[i], strerror(errno));
        close(fd);
    }
}

static void enter_rootfs(struct plan *p) {
    int old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    int new_root = open(p->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (old_root < 0 || new_root < 0) FAIL("rootfs %s: %s", p->rootfs, strerror(errno));
    if (fchdir(new_root) != 0) FAIL("rootfs %s: chdir: %s", p->rootfs, strerror(errno));
    if (syscall(SYS_pivot_root, ".", ".") != 0) FAIL("pivot_root into %s: %s", p->rootfs, strerror(errno));
    if (fchdir(old_root) != 0) FAIL("pivot_root: %s", strerror(errno));
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) != 0) FAIL("pivot_root: making the old root a slave: %s", strerror(errno));
    if (umount2(".", MNT_DETACH) != 0) FAIL("pivot_root: detaching the old root: %s", strerror(errno));
    if (chdir("/") != 0) FAIL("chdir /: %s", strerror(errno));
    close(old_root);
    close(new_root);
}

static void mask_paths(struct plan *p) {
    for (int i = 0; i < p->masked_count; i++) {
        struct stat st;
        if (lstat(p->masked[i], &st) != 0) continue;
        int rc = S_ISDIR(st.st_mode) ? mount("tmpfs", p->masked[i], "tmpfs", MS_RDONLY, "size=0k")
                                     : mount("/dev/null", p->masked[i], NULL, MS_BIND, NULL);
        if (rc != 0) FAIL("masking %s: %s", p->masked[i], strerror(errno));
    }
    for (int i = 0; i < p->readonly_count; i++) {
        struct stat st;
        if (lstat(p->readonly[i], &st) != 0) continue;
        if (mount(p->readonly[i], p->readonly[i], NULL, MS_BIND | MS_REC, NULL) != 0 ||
            mount(NULL, p->readonly[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | statvfs_flags(p->readonly[i]), NULL) != 0)
            FAIL("read-only %s: %s", p->readonly[i], strerror(errno));
    }
    if (p->rootfs_readonly && mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | statvfs_flags("/"), NULL) != 0)
        FAIL("read-only root: %s", strerror(errno));
}

static void setup_filesystem(struct plan *p) {
    unsigned long propagation = p->rootfs_propagation ? p->rootfs_propagation : (MS_SLAVE | MS_REC);
    if (mount(NULL, "/", NULL, propagation, NULL) != 0) FAIL("rootfs propagation: %s", strerror(errno));
    if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) FAIL("rootfs %s: bind: %s", p->rootfs, strerror(errno));
    int root = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) FAIL("rootfs %s: %s", p->rootfs, strerror(errno));
    for (int i = 0; i < p->mount_count; i++) do_mount(root, &p->mounts[i]);
    make_devices(root, p);
    close(root);
}

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
void process_setup_and_exec(struct plan *p, int fifo_fd, int seccomp_fd) __attribute__((noreturn));
void process_setup_and_exec(struct plan *p, int fifo_fd, int seccomp_fd) {
    for (int i = 0; i < p->rlimit_count; i++) {
        struct rlimit limit = { p->rlimit_soft[i], p->rlimit_hard[i] };
        if (setrlimit(p->rlimit_resources[i], &limit) != 0) FAIL("rlimit %d: %s", p->rlimit_resources[i], strerror(errno));
    }
    if (p->has_oom_score_adj) {
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        char value[32];
        int n = snprintf(value, sizeof value, "%d", p->oom_score_adj);
        if (fd < 0 || write_all(fd, value, (size_t)n) < 0) FAIL("oom_score_adj: %s", strerror(errno));
        close(fd);
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
        if (write_all(report_fd, "R", 1) < 0) _exit(1);
        char path[64];
        fd_path(fifo_fd, path, sizeof path);
        int writer = open(path, O_WRONLY | O_CLOEXEC);
        if (writer < 0) FAIL("waiting for start: %s", strerror(errno));
        if (write_all(writer, "0", 1) < 0) FAIL("waiting for start: %s", strerror(errno));
        close(writer);
        close(fifo_fd);
    } else if (write_all(report_fd, "R", 1) < 0) {
        _exit(1);
    }
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    load_seccomp(seccomp_fd);
    execute(p);
}

void container_init(struct plan *p, int sync_fd, int error_fd, int fifo_fd, int seccomp_fd) {
    (void)error_fd;
    report_fd = sync_fd;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* Nothing in the container may open this process through /proc while it runs host code. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    char go;
    if (read(sync_fd, &go, 1) != 1) _exit(1);   /* the monitor placed us in the cgroups */
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
        setup_filesystem(p);
        enter_rootfs(p);
        write_sysctls(p);   /* through the container's own /proc, before /proc/sys turns read-only */
        mask_paths(p);
    }
    if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) != 0) FAIL("hostname %s: %s", p->hostname, strerror(errno));
    if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) != 0) FAIL("domainname: %s", strerror(errno));
    process_setup_and_exec(p, fifo_fd, seccomp_fd);
}
