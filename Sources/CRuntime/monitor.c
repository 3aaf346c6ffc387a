/* The per-container monitor: a small C process (the agent binary entered through an ELF
 * constructor before the Swift runtime starts) that clones the container with its namespaces,
 * places it in its cgroups, reports "created", forwards its output to the CRI log file, reaps it,
 * and records how it ended in an exit file. It is detached (its caller's grandchild, setsid) so
 * containers outlive the agent; the agent re-adopts them from the pid and exit files. */
#include "internal.h"
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long clock_nanoseconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long iotkube_now_nanoseconds(void) { return clock_nanoseconds(CLOCK_REALTIME); }

static void report(int fd, const char *format, const char *text, long long number) {
    if (fd < 0) return;
    char line[1200];
    int n = text ? snprintf(line, sizeof line, format, text) : snprintf(line, sizeof line, format, number);
    if (n > 0) iotkube_write_all(fd, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

int iotkube_monitor_main(int argc, char **argv) {
    if (argc < 4) return 2;
    int report_fd = atoi(argv[3]);
    iotkube_close_inherited(report_fd);
    fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    struct plan plan;
    char *error = NULL;
    if (iotkube_plan_load(argv[2], &plan, &error) != 0) { report(report_fd, "error plan %s: ", argv[2], 0); report(report_fd, "%s\n", error, 0); return 1; }
    /* Leave the caller's children: this process exits at once (the caller reaps it) and the
     * monitor goes on in a child of its own, which init (the nearest subreaper: systemd) reaps
     * once the container has ended. As the caller's child it would stay a zombie from its
     * container's end until the agent exits: one per container restart, for months. (An agent
     * that is itself pid 1 of a container gets them back; run it with an init there.) Still
     * single-threaded here (see entry.c). */
    pid_t detached = fork();
    if (detached < 0) { report(report_fd, "error fork: %s\n", strerror(errno), 0); return 1; }
    if (detached > 0) _exit(0);
    setsid();
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    int flags = 0;
    for (int i = 0; i < plan.namespace_count; i++) {
        struct plan_namespace *ns = &plan.namespaces[i];
        if (!*ns->path) {
            /* A cgroup namespace is made by the init after the monitor has placed it in its
             * cgroups, so that its own cgroup is the namespace's root ("0::/"), as runc does. */
            if (ns->flag == CLONE_NEWCGROUP) plan.new_cgroup_namespace = 1;
            else flags |= ns->flag;
            continue;
        }
        if (ns->flag == CLONE_NEWPID) {
            /* A pid namespace is joined for our children: do it before the clone. */
            int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || setns(fd, CLONE_NEWPID) != 0) { report(report_fd, "error joining pid namespace %s\n", ns->path, 0); return 1; }
            close(fd);
        }
    }
    int sync[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) != 0) { report(report_fd, "error socketpair: %s\n", strerror(errno), 0); return 1; }
    int out[2] = { -1, -1 }, err[2] = { -1, -1 }, in[2] = { -1, -1 };
    int log = -1;
    int console_fd = -1;
    int terminal_receiver = -1;
    if (plan.terminal_to_monitor) {
        /* The container's pty master comes back to us over a socket pair; output is then the
         * terminal's (logged as stdout, as the CRI logs a tty container). */
        int pair[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) { report(report_fd, "error socketpair: %s\n", strerror(errno), 0); return 1; }
        terminal_receiver = pair[0];
        console_fd = pair[1];
    } else if (plan.console_socket) {
        /* process.terminal: the container sends its pty master here; the receiver owns its I/O. */
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        if (strlen(plan.console_socket) >= sizeof address.sun_path) { report(report_fd, "error console socket %s: path too long\n", plan.console_socket, 0); return 1; }
        strcpy(address.sun_path, plan.console_socket);
        console_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (console_fd < 0 || connect(console_fd, (struct sockaddr *)&address, sizeof address) != 0) {
            report(report_fd, "error console socket %s: ", plan.console_socket, 0);
            report(report_fd, "%s\n", strerror(errno), 0);
            return 1;
        }
    } else if (!plan.stdio_inherit) {
        if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) { report(report_fd, "error pipe: %s\n", strerror(errno), 0); return 1; }
        if (plan.stdin_mode && pipe2(in, O_CLOEXEC) != 0) { report(report_fd, "error pipe: %s\n", strerror(errno), 0); return 1; }
    }
    /* The CRI log, for output this monitor forwards (pipes, or a terminal it keeps). */
    if (terminal_receiver >= 0 || out[0] >= 0) {
        if (plan.log_file && *plan.log_file) {
            log = open(plan.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
            if (log < 0) { report(report_fd, "error log file %s\n", plan.log_file, 0); return 1; }
        } else {
            log = open("/dev/null", O_WRONLY | O_CLOEXEC);
        }
    }
    iotkube_journal_open(plan.journal_identifier);
    int fifo_fd = -1, seccomp_fd = -1;
    if (plan.exec_fifo && (fifo_fd = open(plan.exec_fifo, O_PATH | O_CLOEXEC)) < 0) { report(report_fd, "error exec fifo %s\n", plan.exec_fifo, 0); return 1; }
    if (plan.seccomp_path && (seccomp_fd = open(plan.seccomp_path, O_RDONLY | O_CLOEXEC)) < 0) { report(report_fd, "error seccomp filter %s\n", plan.seccomp_path, 0); return 1; }

    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    int terminal = -1;
    pid_t child;
    if (plan.external_argc > 0) {
        char external_error[1100];
        child = iotkube_create_with_external_runtime(&plan, in[0], out[1], err[1], external_error, sizeof external_error);
        if (child < 0) { report(report_fd, "error %s\n", external_error, 0); return 1; }
        close(sync[0]);
        close(sync[1]);
        if (out[1] >= 0) { close(out[1]); close(err[1]); }
        if (in[0] >= 0) { close(in[0]); fcntl(in[1], F_SETFL, O_NONBLOCK); }
        if (!plan.stdio_inherit) {
            int null = open("/dev/null", O_RDWR | O_CLOEXEC);
            if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); if (null > 2) close(null); }
        }
        goto created;
    }
    child = (pid_t)syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), NULL, NULL, NULL, NULL);
    if (child < 0) { report(report_fd, "error clone: %s\n", strerror(errno), 0); return 1; }
    if (child == 0) {
        close(sync[0]);
        if (!plan.stdio_inherit && console_fd < 0) {
            int null = in[0] >= 0 ? in[0] : open("/dev/null", O_RDONLY);
            if (null < 0 || dup2(null, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) iotkube_fail(sync[1], "stdio: %s", strerror(errno));
            if (null > 2) close(null);
        }
        iotkube_container_init(&plan, sync[1], console_fd, fifo_fd, seccomp_fd);
    }
    close(sync[1]);
    if (console_fd >= 0) close(console_fd);
    if (out[1] >= 0) { close(out[1]); close(err[1]); }
    if (in[0] >= 0) { close(in[0]); fcntl(in[1], F_SETFL, O_NONBLOCK); }
    if (!plan.stdio_inherit) {
        /* The container writes to its log; we must not keep the caller's terminal or pipes open. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); if (null > 2) close(null); }
    }
    if (fifo_fd >= 0) close(fifo_fd);
    if (seccomp_fd >= 0) close(seccomp_fd);

    /* Place the child in its cgroups before it does anything: with the systemd driver, in a
     * scope systemd makes for it (the kubelet's layout, as runc does); else by its cgroup.procs. */
    if (plan.systemd_scope) {
        char scope_error[1100];
        if (iotkube_place_in_scope(&plan, child, scope_error, sizeof scope_error) != 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            report(report_fd, "error %s\n", scope_error, 0);
            return 1;
        }
    }
    for (int i = 0; i < plan.cgroup_procs_count; i++) {
        int fd = open(plan.cgroup_procs[i], O_WRONLY | O_CLOEXEC);
        char pid_text[32];
        int n = snprintf(pid_text, sizeof pid_text, "%d", (int)child);
        if (fd < 0 || iotkube_write_all(fd, pid_text, (size_t)n) < 0) {
            report(report_fd, "error joining cgroup %s\n", plan.cgroup_procs[i], 0);
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            return 1;
        }
        close(fd);
    }
    /* "go", with the init's pid as the host sees it (the state its hooks get). */
    char go[32];
    int go_length = snprintf(go, sizeof go, "g%d", (int)child);
    if (iotkube_write_all(sync[0], go, (size_t)go_length) < 0) { kill(child, SIGKILL); waitpid(child, NULL, 0); report(report_fd, "error the container init died\n", NULL, 0); return 1; }
    char message[1100];
    ssize_t got = recv(sync[0], message, sizeof message - 1, 0);
    /* The init's file system is set up, pivot_root not done: prestart and createRuntime hooks
     * (in the runtime's namespaces; but in a pid namespace the spec joins by path, which the
     * monitor entered for its children). */
    while (got > 0 && message[0] == 'H') {
        char hook_error[700];
        if (iotkube_run_hooks(&plan, "pr", "creating", (long long)child, hook_error, sizeof hook_error) != 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            report(report_fd, "error %s\n", hook_error, 0);
            return 1;
        }
        if (iotkube_write_all(sync[0], "c", 1) < 0) { kill(child, SIGKILL); waitpid(child, NULL, 0); report(report_fd, "error the container init died\n", NULL, 0); return 1; }
        got = recv(sync[0], message, sizeof message - 1, 0);
    }
    if (got <= 0 || message[0] != 'R') {
        message[got > 0 ? got : 0] = 0;
        int status = 0;
        waitpid(child, &status, 0);
        report(report_fd, "error %s\n", got > 1 ? message + 1 : "the container init exited during setup", 0);
        return 1;
    }
    if (terminal_receiver >= 0) {
        /* Sent before the container reported ready. */
        terminal = iotkube_receive_descriptor(terminal_receiver, 10000);
        close(terminal_receiver);
        if (terminal < 0) {
            kill(child, SIGKILL);
            waitpid(child, NULL, 0);
            report(report_fd, "error receiving the container's terminal: %s\n", strerror(errno), 0);
            return 1;
        }
        out[0] = terminal;
    }
created:;
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%d", (int)child);
    if (plan.pid_file && iotkube_write_file_atomic(plan.pid_file, pid_text) != 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        report(report_fd, "error writing pid file %s\n", plan.pid_file, 0);
        return 1;
    }
    /* With its start time, read while it cannot have been reaped (we reap it, later). */
    char created_line[160];
    snprintf(created_line, sizeof created_line, "created %lld %llu %lld %llu\n", (long long)child, iotkube_start_ticks(child),
             (long long)getpid(), iotkube_start_ticks(getpid()));
    report(report_fd, "%s", created_line, 0);

    /* Attach: the container's stdin pipe, or the terminal, which is its stdin too. */
    int stdin_fd = in[1];
    if (terminal >= 0) {
        /* Non-blocking: the container can make a readable master block again before we read. */
        fcntl(terminal, F_SETFL, O_NONBLOCK);
        if (plan.stdin_mode) stdin_fd = fcntl(terminal, F_DUPFD_CLOEXEC, 3);
    }
    int attaching = 0;
    if (plan.attach && plan.state_directory && out[0] >= 0) {
        attaching = iotkube_attach_start(plan.state_directory, stdin_fd, terminal, plan.stdin_mode) == 0;
    }
    if (!attaching && stdin_fd >= 0) { close(stdin_fd); stdin_fd = -1; }  /* no stdin without attach */

    /* Forward output, watch for an exec error, reap. */
    int signals = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    struct log_stream streams[2] = { { out[0], "stdout", {0}, 0 }, { err[0], "stderr", {0}, 0 } };
    char exec_error[1100] = "";
    int sync_open = plan.external_argc == 0, exited = 0, status = 0;
    int memory_events = iotkube_memory_events_open(plan.memory_events);
    long long oom_kills = memory_events >= 0 ? iotkube_oom_kills(memory_events) : -1;
    /* systemd removes an empty scope's cgroup at once, and memory.events notifications are
     * rate-limited: the container's own count can be gone before it is read. The parent's count
     * (hierarchical) then tells whether an OOM kill happened while the container ran. */
    int parent_events = memory_events >= 0 ? iotkube_parent_memory_events_open(plan.memory_events) : -1;
    /* The parent's count when the own count was last read (moved on at each event of either,
     * so siblings' kills before then are not this container's). */
    long long parent_baseline = parent_events >= 0 ? iotkube_oom_kills(parent_events) : -1;
    long long own_at_baseline = oom_kills;
    int own_count_lost = 0;
    long long exited_at = 0;
    while (!exited || (streams[0].fd >= 0 || streams[1].fd >= 0)) {
        struct pollfd fds[16];
        int count = 0;
        int index_signals = -1, index_sync = -1, index_streams[2] = { -1, -1 }, index_attach = -1, index_events = -1;
        if (!exited) { fds[count] = (struct pollfd){ signals, POLLIN, 0 }; index_signals = count++; }
        if (memory_events >= 0 && !exited) { fds[count] = (struct pollfd){ memory_events, POLLPRI, 0 }; index_events = count++; }
        int index_parent_events = -1;
        if (parent_events >= 0 && memory_events >= 0 && !exited) { fds[count] = (struct pollfd){ parent_events, POLLPRI, 0 }; index_parent_events = count++; }
        if (sync_open) { fds[count] = (struct pollfd){ sync[0], POLLIN, 0 }; index_sync = count++; }
        for (int s = 0; s < 2; s++) if (streams[s].fd >= 0) { fds[count] = (struct pollfd){ streams[s].fd, POLLIN, 0 }; index_streams[s] = count++; }
        if (attaching) { index_attach = count; count += iotkube_attach_fill_poll(fds + count, 16 - count, !exited); }
        /* After the exit, output still buffered in the pipes is drained without blocking forever:
         * a grandchild may hold the pipe open (or keep writing); give it a second of silence and
         * three seconds in all, so the exit is recorded soon after the reap. */
        if (exited && clock_nanoseconds(CLOCK_MONOTONIC) - exited_at > 3000000000LL) break;
        int rc = poll(fds, (nfds_t)count, exited ? 1000 : -1);
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0 && exited) break;
        if (index_sync >= 0 && fds[index_sync].revents) {
            ssize_t n = recv(sync[0], exec_error, sizeof exec_error - 1, 0);
            if (n > 1 && exec_error[0] == 'E') exec_error[n] = 0; else exec_error[0] = 0;
            if (n <= 0 || exec_error[0]) { sync_open = 0; close(sync[0]); }
        }
        for (int s = 0; s < 2; s++) {
            if (index_streams[s] >= 0 && fds[index_streams[s]].revents) {
                if (!iotkube_forward(&streams[s], log)) { close(streams[s].fd); streams[s].fd = -1; }
            }
        }
        if (index_attach >= 0) iotkube_attach_after_poll(fds + index_attach);
        if ((index_events >= 0 && fds[index_events].revents) || (index_parent_events >= 0 && fds[index_parent_events].revents)) {
            long long parent_now = parent_events >= 0 ? iotkube_oom_kills(parent_events) : -1;
            long long kills = iotkube_oom_kills(memory_events);
            if (kills < 0) { close(memory_events); memory_events = -1; own_count_lost = 1; }
            else {
                if (kills > oom_kills) oom_kills = kills;
                if (parent_now >= 0) { parent_baseline = parent_now; own_at_baseline = oom_kills; }
            }
        }
        if (index_signals >= 0 && fds[index_signals].revents) {
            struct signalfd_siginfo info;
            while (read(signals, &info, sizeof info) > 0) {}
            int child_status;
            pid_t reaped;
            while ((reaped = waitpid(-1, &child_status, WNOHANG)) > 0) {
                if (reaped == child) {
                    status = child_status; exited = 1; exited_at = clock_nanoseconds(CLOCK_MONOTONIC);
                    long long kills = memory_events >= 0 ? iotkube_oom_kills(memory_events) : -1;
                    if (kills > oom_kills) oom_kills = kills;
                    if (kills < 0 && oom_kills >= 0) own_count_lost = 1;
                }
            }
        }
    }
    /* The own count was lost with its cgroup before it showed a kill: a SIGKILL while the
     * parent counted one more is taken as this container's OOM kill (a sibling's kill at the
     * same moment could be taken for it). */
    if (own_count_lost && oom_kills == own_at_baseline && parent_baseline >= 0
        && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        long long parent_kills = iotkube_oom_kills(parent_events);
        if (parent_kills > parent_baseline) oom_kills = own_at_baseline + 1;
    }
    if (parent_events >= 0) close(parent_events);
    /* Attached clients see the end; nobody attaches to an exited container. */
    if (attaching) iotkube_attach_finish();
    long long finished = iotkube_now_nanoseconds();
    int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    int signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (exec_error[0]) exit_code = strstr(exec_error, "Permission denied") ? 126 : 127;
    char escaped[2300];
    size_t e = 0;
    for (const char *c = exec_error[0] ? exec_error + 1 : ""; *c && e < sizeof escaped - 8; c++) {
        if (*c == '"' || *c == '\\') { escaped[e++] = '\\'; escaped[e++] = *c; }
        else if ((unsigned char)*c < 0x20) escaped[e++] = ' ';
        else escaped[e++] = *c;
    }
    escaped[e] = 0;
    char record[3000], kills[48] = "";
    if (oom_kills >= 0) snprintf(kills, sizeof kills, ",\"oomKills\":%lld", oom_kills);
    snprintf(record, sizeof record, "{\"pid\":%d,\"exitCode\":%d,\"signal\":%d,\"finishedAt\":%lld,\"error\":\"%s\"%s}\n",
             (int)child, exit_code, signal_number, finished, escaped, kills);
    if (plan.exit_file) iotkube_write_file_atomic(plan.exit_file, record);
    /* The rest of the container's processes were killed with its pid namespace (or are orphans
     * we adopted as subreaper): reap them, after the exit is recorded so the agent does not wait
     * for them (an exited process has already left its cgroup). */
    for (int i = 0; i < 500; i++) {
        pid_t reaped = waitpid(-1, NULL, WNOHANG);
        if (reaped < 0 && errno == ECHILD) break;
        if (reaped <= 0) usleep(10000);
    }
    if (log >= 0) close(log);
    report(report_fd, "exited %lld\n", NULL, (long long)exit_code);
    return 0;
}
