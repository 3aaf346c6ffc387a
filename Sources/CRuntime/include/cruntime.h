#ifndef IOTKUBE_CRUNTIME_H
#define IOTKUBE_CRUNTIME_H

/// The argv[1] that turns the agent binary into a container monitor. The check runs in an ELF
/// constructor, before the Swift runtime starts any thread: the monitor and the container's
/// setup are single-threaded C (no fork from Swift).
#define IOTKUBE_MONITOR_ARGUMENT "__iotkube-monitor"
/// The argv[1] for running a process inside an existing container (`runtime exec`).
#define IOTKUBE_EXEC_ARGUMENT "__iotkube-exec"

/// Referenced from Swift so the linker keeps this target (and its constructor).
int iotkube_runtime_linked(void);

#include <spawn.h>

/// Closes every descriptor from `lowest` up in the spawned child (glibc's
/// posix_spawn_file_actions_addclosefrom_np), so a helper never inherits stray descriptors.
int iotkube_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);
/// Spawn attributes for a child that starts with no signal blocked and every disposition at
/// its default (a spawning thread's mask and ignored signals are inherited across exec).
void iotkube_spawnattr_default_signals(posix_spawnattr_t *attributes);

/// pipe2(fds, O_CLOEXEC).
int iotkube_pipe_cloexec(int fds[2]);

/// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC).
int iotkube_socketpair_cloexec(int fds[2]);

/// Receives one descriptor sent with SCM_RIGHTS over `socket` (received close-on-exec) within
/// `timeout_ms`; -1 with errno set (ENODATA when the peer closed without sending one,
/// ETIMEDOUT when nothing came in time).
int iotkube_receive_descriptor(int socket, int timeout_ms);

/// At most `arenas` malloc arenas for the process (glibc otherwise gives each allocating thread
/// one of its own, up to 8 per core, and keeps their memory resident).
void iotkube_limit_malloc_arenas(int arenas);

/// Gives the free pages of every malloc arena back to the kernel (malloc_trim).
void iotkube_release_free_heap(void);

/// 1 when `path` is a namespace file held by a bind mount (nsfs), 0 when not, -1 when missing.
int iotkube_is_namespace_file(const char *path);

/// Makes a pod sandbox at `directory`: new network, IPC and UTS namespaces held by bind mounts
/// at `net`, `ipc` and `uts` in it, `hostname` set, lo up. Safe from any thread (a vfork-style
/// child makes them; the caller's namespaces never change). 0, or -1 with `message` set and
/// nothing left behind but the directory.
int iotkube_sandbox_create(const char *directory, const char *hostname, char *message, unsigned long message_size);

/// Unmounts and deletes what `iotkube_sandbox_create` made (the namespaces end with their last
/// user). 0, or -1 with `message` set.
int iotkube_sandbox_remove(const char *directory, char *message, unsigned long message_size);

/// 1 when `path` is a cgroup2 file system, 0 when not, -1 when it cannot be read.
int iotkube_is_cgroup2(const char *path);

#include <stddef.h>
#include <stdint.h>

/// Connects to the attach socket a container's monitor serves in its state directory
/// (`<state_directory>/attach`, a stream socket), through the directory's descriptor, without
/// waiting. Returns the descriptor (close-on-exec, non-blocking) or -1 with errno set.
int iotkube_attach_connect(const char *state_directory);

/// Connects a TCP socket to the loopback address of the network namespace at `netns_path`
/// (the host's own when `netns_path` is NULL) on `port`: IPv4 127.0.0.1 first, then ::1. The
/// socket is made on a short-lived thread of its own that joins the namespace, so no other
/// thread ever changes namespace. Waits at most `timeout_ms` for the connection. Returns the
/// connected descriptor (close-on-exec, non-blocking) or -1 with `error` filled in.
int iotkube_connect_loopback_in_netns(const char *netns_path, uint16_t port, int timeout_ms, char *error, size_t error_size);

/// One OCI device rule (`linux.resources.devices[]`): type 'a', 'b' or 'c'; major/minor -1 = any;
/// access bits 1 = mknod, 2 = read, 4 = write (the kernel's BPF_DEVCG_ACC_* values).
struct iotkube_device_rule {
    int allow;
    char type;
    int64_t major;
    int64_t minor;
    unsigned access;
};

/// cgroup v2: compiles `rules` (last match wins, no match = deny) into a BPF cgroup device
/// program and attaches it to `cgroup_directory`. 0 on success; -1 with `error` filled in.
int iotkube_device_filter_attach(const char *cgroup_directory, const struct iotkube_device_rule *rules, int count,
                                 char *error, size_t error_size);

/// A property of a systemd unit for StartTransientUnit/SetUnitProperties: `type` 's' (text),
/// 'b' (number 0/1), 't' (uint64 number), 'u' (uint32 number) or 'p' (`PIDs`: a list of the one
/// pid in number). An `optional` one is left out where systemd is too old to know it.
struct iotkube_unit_property {
    const char *name;
    char type;
    const char *text;
    unsigned long long number;
    int optional;
};

/// Starts a transient unit (a slice, or a scope holding the pid given) through systemd's D-Bus
/// API, within 30 s. 0 when started (the start job queued), 1 when the unit exists already, -1
/// with `error`.
int iotkube_systemd_start_transient_unit(const char *unit, const struct iotkube_unit_property *properties, int count,
                                         char *error, size_t error_size);
/// Changes a unit's properties (until the next boot). 0, or -1 with `error`.
int iotkube_systemd_set_unit_properties(const char *unit, const struct iotkube_unit_property *properties, int count,
                                        char *error, size_t error_size);
/// Stops a unit (nothing when systemd has no such unit). 0, or -1 with `error`.
int iotkube_systemd_stop_unit(const char *unit, char *error, size_t error_size);
/// Sends `signal_number` to every process of a unit (systemd's KillUnit). 0, or -1 with `error`.
int iotkube_systemd_kill_unit(const char *unit, int signal_number, char *error, size_t error_size);

/// A connection to systemd-logind on the system bus (the graceful node shutdown).
struct iotkube_logind;
/// Connects, and watches logind's PrepareForShutdown (from logind's own connection only).
/// NULL with `error` when there is no bus or no logind.
struct iotkube_logind *iotkube_logind_open(char *error, size_t error_size);
void iotkube_logind_close(struct iotkube_logind *logind);
/// Takes a delay inhibitor lock on shutdown (Inhibit "shutdown", `who`, `why`, "delay"): the
/// lock's descriptor, which releases it when closed; or -1 with `error`.
int iotkube_logind_inhibit(struct iotkube_logind *logind, const char *who, const char *why, char *error, size_t error_size);
/// logind's InhibitDelayMaxUSec (the longest a delay lock holds a shutdown back), or -1.
long long iotkube_logind_inhibit_delay_max(struct iotkube_logind *logind, char *error, size_t error_size);
/// logind's PreparingForShutdown: 1 a shutdown is under way, 0 not, -1 with `error`.
int iotkube_logind_preparing_for_shutdown(struct iotkube_logind *logind, char *error, size_t error_size);
/// Waits up to `timeout_ms` for PrepareForShutdown: 1 a shutdown begins, 0 one was cancelled,
/// 2 nothing came, 3 nothing yet but more messages wait (call again), -1 the connection failed
/// or logind restarted (`error`; connect again).
int iotkube_logind_wait(struct iotkube_logind *logind, int timeout_ms, char *error, size_t error_size);

/// Waits until process `pid` is in the unified hierarchy's `cgroup` ("/a.slice/b.scope"): 0, or
/// -1 (errno ETIMEDOUT after `timeout_ms`, or the process is gone).
int iotkube_wait_for_cgroup(long long pid, const char *cgroup, int timeout_ms);

#endif
