/* OCI hooks: a program run with the container's state (JSON) on its stdin, bounded by its
 * timeout. The monitor runs prestart and createRuntime hooks (the runtime's namespaces, before
 * pivot_root); the container's init runs createContainer hooks (its mount namespace, before
 * pivot_root) and startContainer hooks (inside the container, after `start`, before the
 * process is executed). poststart and poststop hooks are run by the Swift side. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *iotkube_hook_kind_name(int kind) {
    switch (kind) {
    case 'p': return "prestart";
    case 'r': return "createRuntime";
    case 'c': return "createContainer";
    case 's': return "startContainer";
    default: return "hook";
    }
}

static int iotkube_run_hook(const struct plan *p, const struct plan_hook *hook, const char *status, long long pid, char *error, size_t error_size) {
    char state[8192];
    int length = snprintf(state, sizeof state, "%s%s\",\"pid\":%lld%s", p->hook_state_prefix ? p->hook_state_prefix : "{\"status\":\"",
                          status, pid, p->hook_state_suffix ? p->hook_state_suffix : "}");
    /* The Swift side refuses states that do not fit. */
    if (length < 0 || length >= (int)sizeof state) { snprintf(error, error_size, "%s hook %s: the state is too large", iotkube_hook_kind_name(hook->kind), hook->path); return -1; }
    int input[2], output[2];
    if (pipe2(input, O_CLOEXEC) != 0) { snprintf(error, error_size, "pipe: %s", strerror(errno)); return -1; }
    if (pipe2(output, O_CLOEXEC) != 0) { close(input[0]); close(input[1]); snprintf(error, error_size, "pipe: %s", strerror(errno)); return -1; }
    pid_t child = fork();
    if (child < 0) {
        snprintf(error, error_size, "fork: %s", strerror(errno));
        close(input[0]); close(input[1]); close(output[0]); close(output[1]);
        return -1;
    }
    if (child == 0) {
        if (dup2(input[0], 0) < 0 || dup2(output[1], 1) < 0 || dup2(output[1], 2) < 0) _exit(127);
        setpgid(0, 0);   /* a timeout kills the hook with everything it started */
        iotkube_reset_signals();
        const char *fallback[2] = { hook->path, NULL };
        execve(hook->path, hook->arg_count ? (char *const *)hook->args : (char *const *)fallback, (char *const *)hook->env);
        dprintf(2, "cannot run %s: %s", hook->path, strerror(errno));
        _exit(127);
    }
    close(input[0]);
    close(output[1]);
    setpgid(child, child);
    /* The state goes in as the hook reads it, within the timeout (a hook that does not read
     * it must not hold us past its deadline); SIGPIPE is ignored while we write. */
    fcntl(input[1], F_SETFL, O_NONBLOCK);
    void (*previous)(int) = signal(SIGPIPE, SIG_IGN);
    size_t written = 0;
    char said[256];
    size_t said_length = 0;
    long long deadline = hook->timeout > 0 ? now_ms() + (long long)hook->timeout * 1000 : 0;
    int status_code = 0, reaped = 0, timed_out = 0, open_output = 1;
    while (!reaped) {
        struct pollfd descriptors[2] = { { .fd = open_output ? output[0] : -1, .events = POLLIN }, { .fd = input[1], .events = POLLOUT } };
        poll(descriptors, input[1] >= 0 ? 2 : 1, 10);
        if (input[1] >= 0 && (descriptors[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(input[1], state + written, (size_t)length - written);
            if (n > 0) written += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == (size_t)length) { close(input[1]); input[1] = -1; }
        }
        if (open_output && (descriptors[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            char chunk[256];
            ssize_t n = read(output[0], chunk, sizeof chunk);
            if (n <= 0) open_output = 0;
            for (ssize_t i = 0; i < n && said_length < sizeof said - 1; i++) said[said_length++] = chunk[i];
        }
        pid_t got = waitpid(child, &status_code, WNOHANG);
        if (got == child) reaped = 1;
        else if (deadline && now_ms() > deadline) {
            kill(-child, SIGKILL);
            waitpid(child, &status_code, 0);
            reaped = 1;
            timed_out = 1;
        }
    }
    if (input[1] >= 0) close(input[1]);
    signal(SIGPIPE, previous);
    close(output[0]);
    while (said_length > 0 && (said[said_length - 1] == '\n' || said[said_length - 1] == ' ')) said_length--;
    said[said_length] = 0;
    const char *name = iotkube_hook_kind_name(hook->kind);
    if (timed_out) { snprintf(error, error_size, "%s hook %s: timed out after %d s", name, hook->path, hook->timeout); return -1; }
    if (WIFEXITED(status_code) && WEXITSTATUS(status_code) == 0) return 0;
    if (WIFEXITED(status_code)) snprintf(error, error_size, "%s hook %s: exited with %d%s%s", name, hook->path, WEXITSTATUS(status_code), said_length ? ": " : "", said);
    else snprintf(error, error_size, "%s hook %s: killed by signal %d", name, hook->path, WTERMSIG(status_code));
    return -1;
}

int iotkube_run_hooks(const struct plan *p, const char *kinds, const char *status, long long pid, char *error, size_t error_size) {
    for (int i = 0; i < p->hook_count; i++) {
        if (!strchr(kinds, p->hooks[i].kind)) continue;
        if (iotkube_run_hook(p, &p->hooks[i], status, pid, error, error_size) != 0) return -1;
    }
    return 0;
}

int iotkube_has_hooks(const struct plan *p, const char *kinds) {
    for (int i = 0; i < p->hook_count; i++) if (strchr(kinds, p->hooks[i].kind)) return 1;
    return 0;
}
