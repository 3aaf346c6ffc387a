/* The container's file system: mounts resolved inside the rootfs, device nodes, pivot_root,
 * masked and read-only paths. Runs in the cloned child, before the process setup. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FAIL(...) iotkube_fail(iotkube_setup_report_fd, __VA_ARGS__)

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

void iotkube_fd_path(int fd, char *out, size_t size) { snprintf(out, size, "/proc/self/fd/%d", fd); }

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
    iotkube_fd_path(target, path, sizeof path);
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
            iotkube_fd_path(target, path, sizeof path);
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
        iotkube_fd_path(target, path, sizeof path);
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
        iotkube_fd_path(parent, parent_fd_path, sizeof parent_fd_path);
        int directory = open(parent_fd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(parent);
        if (directory < 0) FAIL("device %s: %s", d->path, strerror(errno));
        mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        unlinkat(directory, slash + 1, 0);
        /* The node gets its mode at creation (no umask, so no chmod afterwards: a chmod by name
         * would follow a symlink swapped in meanwhile, by whatever shares the directory). */
        mode_t saved_umask = umask(0);
        int made = mknodat(directory, slash + 1, type | (d->mode & 07777), makedev(d->major, d->minor));
        umask(saved_umask);
        if (made != 0) {
            if (errno != EPERM) FAIL("device %s: mknod: %s", d->path, strerror(errno));
            /* The device controller's rules may grant access without mknod ('rw'): bind the
             * host's node of the same path instead, as runc does. Owner and mode stay the host's. */
            struct stat host;
            if (stat(d->path, &host) != 0 || (host.st_mode & S_IFMT) != type || host.st_rdev != makedev(d->major, d->minor))
                FAIL("device %s: mknod: %s (and the host has no such node to bind)", d->path, strerror(EPERM));
            int file = openat(directory, slash + 1, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (file < 0) FAIL("device %s: %s", d->path, strerror(errno));
            close(file);
            char directory_path[64], target[4200];
            iotkube_fd_path(directory, directory_path, sizeof directory_path);
            snprintf(target, sizeof target, "%s/%s", directory_path, slash + 1);
            if (mount(d->path, target, NULL, MS_BIND, NULL) != 0)
                FAIL("device %s: bind from the host: %s", d->path, strerror(errno));
            close(directory);
            continue;
        }
        /* chown does not follow a link (and a chown changes no mode bits of a device node). */
        if (fchownat(directory, slash + 1, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) != 0)
            FAIL("device %s: chown: %s", d->path, strerror(errno));
        close(directory);
    }
    for (int i = 0; i < p->symlink_count; i++) {
        /* Made in their directory opened inside the root (an image's `dev -> /etc` must not
         * put them on the host); an existing entry is left alone. */
        char parent_path[4096];
        snprintf(parent_path, sizeof parent_path, "%s", p->symlink_paths[i]);
        char *slash = strrchr(parent_path, '/');
        if (!slash || !slash[1]) FAIL("symlink %s: not an absolute file path", p->symlink_paths[i]);
        *slash = 0;
        int parent = make_inside(root, parent_path[0] ? parent_path : "/", 1);
        if (parent < 0) FAIL("symlink %s: %s", p->symlink_paths[i], strerror(errno));
        char parent_fd_path[64];
        iotkube_fd_path(parent, parent_fd_path, sizeof parent_fd_path);
        int directory = open(parent_fd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        close(parent);
        if (directory < 0) FAIL("symlink %s: %s", p->symlink_paths[i], strerror(errno));
        if (symlinkat(p->symlink_targets[i], directory, slash + 1) != 0 && errno != EEXIST)
            FAIL("symlink %s: %s", p->symlink_paths[i], strerror(errno));
        close(directory);
    }
}

void iotkube_write_sysctls(struct plan *p) {
    for (int i = 0; i < p->sysctl_count; i++) {
        char path[512];
        int n = snprintf(path, sizeof path, "/proc/sys/");
        for (const char *c = p->sysctl_keys[i]; *c && n < (int)sizeof path - 1; c++) path[n++] = *c == '.' ? '/' : *c;
        path[n] = 0;
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || iotkube_write_all(fd, p->sysctl_values[i], strlen(p->sysctl_values[i])) < 0)
            FAIL("sysctl %s: %s", p->sysctl_keys[i], strerror(errno));
        close(fd);
    }
}

void iotkube_enter_rootfs(struct plan *p) {
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

void iotkube_mask_paths(struct plan *p) {
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

void iotkube_setup_filesystem(struct plan *p) {
    unsigned long propagation = p->rootfs_propagation ? p->rootfs_propagation : (MS_SLAVE | MS_REC);
    if (mount(NULL, "/", NULL, propagation, NULL) != 0) FAIL("rootfs propagation: %s", strerror(errno));
    if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) != 0) FAIL("rootfs %s: bind: %s", p->rootfs, strerror(errno));
    int root = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) FAIL("rootfs %s: %s", p->rootfs, strerror(errno));
    for (int i = 0; i < p->mount_count; i++) do_mount(root, &p->mounts[i]);
    make_devices(root, p);
    close(root);
}

