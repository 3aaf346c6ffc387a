#ifndef IOTKUBE_CRUNTIME_INTERNAL_H
#define IOTKUBE_CRUNTIME_INTERNAL_H
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "cruntime.h"

#define MAX_ITEMS 256

/* Everything here is the runtime's own: prefixed so a static link with other C code cannot
   clash, and hidden from the dynamic symbol table. */
#pragma GCC visibility push(hidden)

struct plan_mount {
    const char *source, *destination, *fstype, *data;
    unsigned long flags, propagation;
    int recursive_readonly;
};

struct plan_device {
    const char *path;
    char type;
    unsigned major, minor, mode, uid, gid;
};

struct plan_namespace {
    int flag;            /* CLONE_NEW* */
    const char *path;    /* join this one when non-empty */
};

/// What the Swift side decided, as the container's setup needs it. Strings point into the
/// plan file's buffer.
/* An OCI hook: kind 'p' prestart, 'r' createRuntime, 'c' createContainer, 's' startContainer. */
struct plan_hook {
    int kind;
    const char *path;
    int timeout;                         /* seconds; 0: none */
    const char *args[33]; int arg_count;
    const char *env[65]; int env_count;
};

struct plan {
    const char *rootfs;
    int rootfs_readonly;
    unsigned long rootfs_propagation;
    struct plan_namespace namespaces[16]; int namespace_count;
    int new_cgroup_namespace;            /* unshared by the init once it is in its cgroups (set by the monitor) */
    struct plan_mount mounts[MAX_ITEMS]; int mount_count;
    struct plan_device devices[MAX_ITEMS]; int device_count;
    const char *symlink_targets[32], *symlink_paths[32]; int symlink_count;
    const char *masked[MAX_ITEMS]; int masked_count;
    const char *readonly[MAX_ITEMS]; int readonly_count;
    const char *sysctl_keys[MAX_ITEMS], *sysctl_values[MAX_ITEMS]; int sysctl_count;
    const char *hostname, *domainname;
    int rlimit_resources[32]; unsigned long long rlimit_soft[32], rlimit_hard[32]; int rlimit_count;
    unsigned uid, gid, umask_value; int has_umask;
    unsigned groups[64]; int group_count;
    const char *cwd;
    const char *env[MAX_ITEMS + 1]; int env_count;
    const char *args[MAX_ITEMS + 1]; int arg_count;
    uint64_t caps[5]; int has_caps;      /* bounding, effective, inheritable, permitted, ambient */
    int no_new_privileges;
    const char *seccomp_path;           /* raw struct sock_filter array */
    int oom_score_adj; int has_oom_score_adj;
    const char *cgroup_procs[8]; int cgroup_procs_count;
    const char *systemd_scope;           /* the systemd driver: the scope unit the monitor starts for the init */
    const char *systemd_cgroup;          /* its cgroup ("/a.slice/b.scope"), where the init must then be */
    struct iotkube_unit_property unit_properties[25]; int unit_property_count;   /* the scope's; PIDs added */
    const char *memory_events;           /* cgroup v2: the container's memory.events (its OOM kills) */
    const char *exec_fifo, *exit_file, *pid_file, *log_file, *state_directory;
    const char *journal_identifier;      /* also send output lines to journald under this name */
    int stdio_inherit;
    const char *console_socket;          /* process.terminal: send the pty master here */
    int stdin_mode;                      /* 0: /dev/null, 1: a pipe kept open, 2: closed after the first attach ends */
    int attach;                          /* serve the attach socket <state_directory>/attach */
    int terminal_to_monitor;             /* process.terminal: the monitor keeps the pty master (output, stdin, size) */
    pid_t join_pid;                      /* exec: the container process whose namespaces to join */
    struct plan_hook hooks[16]; int hook_count;
    const char *hook_state_prefix, *hook_state_suffix;   /* the state JSON before its status, and after its pid */
    long long host_pid;                  /* the init's pid as the host sees it (sent by the monitor) */
    const char *external_argv[65]; int external_argc;   /* an OCI runtime's `create` command line (crun, runc) */
    const char *external_pid_file;       /* where that runtime writes the container's pid */
    const char *external_log_file;       /* where it writes its errors */
};

int iotkube_plan_load(const char *path, struct plan *plan, char **error);

/* monitor_cgroup.c: starts the plan's systemd scope holding `child` and waits until it is there
 * (0; -2 when systemd has a unit of that name, which is left alone; -1 with `error`, the unit
 * stopped: the caller reaps `child` only after the call); opens a memory.events file (-1 when there is none); reads its
 * oom_kill count (-1 when the cgroup is gone). */
int iotkube_place_in_scope(const struct plan *p, pid_t child, char *error, size_t error_size);
int iotkube_memory_events_open(const char *path);
/* The memory.events of the cgroup above `path`'s (the pod's): its counts include its children's. */
int iotkube_parent_memory_events_open(const char *path);
long long iotkube_oom_kills(int fd);

/* The container's output (container_log.c): a pipe read into complete lines. */
struct log_stream {
    int fd;
    const char *name;
    char buffer[16384];
    size_t used;
};
/* Opens journald's socket for lines of `identifier` (nothing when it does not run). */
void iotkube_journal_open(const char *identifier);
/* Reads what is available; logs complete lines ("F") and full buffers ("P"); 0 at EOF. */
int iotkube_forward(struct log_stream *s, int log);

/* An external OCI runtime's `create` (external_runtime.c); the container's pid, or -1 with `error`. */
pid_t iotkube_create_with_external_runtime(struct plan *p, int in_fd, int out_fd, int err_fd, char *error, size_t error_size);

/* Hooks (hooks.c): runs those of `kinds` in order with the state (its status, its pid) on stdin;
 * -1 with `error` naming the hook and what happened. */
int iotkube_run_hooks(const struct plan *p, const char *kinds, const char *status, long long pid, char *error, size_t error_size);
int iotkube_has_hooks(const struct plan *p, const char *kinds);

/* The monitor's attach server (attach.c): the socket <state_directory>/attach, stdin written
 * to `stdin_fd` (-1: none), terminal sizes to `terminal` (-1: none); stdin_mode 2 is stdinOnce. */
struct pollfd;
int iotkube_attach_start(const char *state_directory, int stdin_fd, int terminal, int stdin_mode);
/* Adds the server's descriptors to `fds` (at most `room`); accepts new clients when `accepting`. */
int iotkube_attach_fill_poll(struct pollfd *fds, int room, int accepting);
/* Acts on what poll reported for the descriptors added last. */
void iotkube_attach_after_poll(const struct pollfd *fds);
/* Output to every client ('1' stdout, '2' stderr). */
void iotkube_attach_broadcast(char kind, const char *data, size_t length);
/* The container exited: clients are told and closed, the socket removed. */
void iotkube_attach_finish(void);

/// The container's setup after clone, in the spec's order; never returns (execs or _exits).
void iotkube_container_init(struct plan *plan, int sync_fd, int console_fd, int fifo_fd, int seccomp_fd) __attribute__((noreturn));

/// What a new process needs once it sees the container's filesystem, then execve (shared by
/// create and exec); never returns.
void iotkube_process_setup_and_exec(struct plan *p, int fifo_fd, int seccomp_fd) __attribute__((noreturn));
/// exec: setup errors go to `sync_fd`.
void iotkube_exec_child_setup(int sync_fd);
/* A pty from the (joined) container's devpts becomes the controlling terminal and stdio; its
 * master goes to console_fd (SCM_RIGHTS). With wait_for_start, the process waits for a byte
 * (or the end) on console_fd before it goes on, so its terminal size can be set first. */
void iotkube_setup_terminal(struct plan *p, int console_fd, int wait_for_start);

/// Where setup errors ("E…") and the ready byte ("R") go: the socket to the monitor or exec caller.
extern int iotkube_setup_report_fd;

/// rootfs.c: mounts and devices inside the rootfs (before pivot_root), pivot_root, sysctls
/// through the container's /proc, masked and read-only paths.
void iotkube_setup_filesystem(struct plan *p);
/// "/proc/self/fd/N" for an fd (to mount or reopen through it).
void iotkube_fd_path(int fd, char *out, size_t size);
void iotkube_enter_rootfs(struct plan *p);
void iotkube_write_sysctls(struct plan *p);
void iotkube_mask_paths(struct plan *p);

int iotkube_monitor_main(int argc, char **argv);
int iotkube_exec_main(int argc, char **argv);
/* Closes every inherited descriptor from 3 up except `keep` (-1: none). */
void iotkube_close_inherited(int keep);
/* All signal dispositions to default and none blocked (before a container process execs). */
void iotkube_reset_signals(void);
/* Field 22 of /proc/<pid>/stat (0 when unreadable). */
unsigned long long iotkube_start_ticks(pid_t pid);

/// Writes "error <message>" to fd and exits 1 (child side); the message names the step.
void iotkube_fail(int fd, const char *format, ...) __attribute__((noreturn, format(printf, 2, 3)));
ssize_t iotkube_write_all(int fd, const void *buffer, size_t length);
int iotkube_write_file_atomic(const char *path, const char *content);
long long iotkube_now_nanoseconds(void);

#pragma GCC visibility pop

#endif
