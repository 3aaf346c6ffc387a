#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* An external OCI runtime makes the container (`<runtime> create --pid-file …`) with our pipes
 * as its stdio; its container process, orphaned when the runtime exits, becomes our child (we
 * are a subreaper) and the rest goes on as for a container we cloned. -1 once reported. */
pid_t iotkube_create_with_external_runtime(struct plan *p, int in_fd, int out_fd, int err_fd, char *error, size_t error_size) {
    unlink(p->external_pid_file);
    pid_t runtime = fork();
    if (runtime < 0) { snprintf(error, error_size, "fork: %s", strerror(errno)); return -1; }
    if (runtime == 0) {
        /* The container's stdio: our pipes, or /dev/null, never what the monitor inherited
         * (the agent's stdin may be an administrator's terminal), unless stdio is inherited. */
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int fds[3] = { in_fd, out_fd, err_fd };
        for (int n = 0; n < 3; n++) {
            int source = fds[n] >= 0 ? fds[n] : (p->stdio_inherit ? -1 : null);
            if (source >= 0 && dup2(source, n) < 0) _exit(127);
        }
        iotkube_reset_signals();
        execv(p->external_argv[0], (char *const *)p->external_argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(runtime, &status, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* Its last error line, from its log. */
        char said[1000] = "";
        int log = open(p->external_log_file, O_RDONLY | O_CLOEXEC);
        if (log >= 0) {
            off_t size = lseek(log, 0, SEEK_END);
            off_t from = size > (off_t)sizeof said - 1 ? size - (off_t)sizeof said + 1 : 0;
            ssize_t n = pread(log, said, sizeof said - 1, from);
            said[n > 0 ? n : 0] = 0;
            close(log);
            size_t length = strlen(said);
            while (length && (said[length - 1] == '\n' || said[length - 1] == ' ')) said[--length] = 0;
            char *last = strrchr(said, '\n');
            if (last) memmove(said, last + 1, strlen(last + 1) + 1);
        }
        snprintf(error, error_size, "%s create failed (%s %d)%s%s", p->external_argv[0], WIFEXITED(status) ? "exit" : "signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), said[0] ? ": " : "", said);
        return -1;
    }
    char text[32] = "";
    int file = open(p->external_pid_file, O_RDONLY | O_CLOEXEC);
    ssize_t n = file >= 0 ? read(file, text, sizeof text - 1) : -1;
    if (file >= 0) close(file);
    text[n > 0 ? n : 0] = 0;
    long long pid = atoll(text);
    if (pid <= 1) { snprintf(error, error_size, "%s wrote no container pid", p->external_argv[0]); return -1; }
    /* Orphaned when the runtime exited, it is ours now (we are a subreaper): only a child of
     * ours is waited for, and only it can be trusted to be the container. */
    char stat_path[64], stat_text[1024] = "";
    snprintf(stat_path, sizeof stat_path, "/proc/%lld/stat", pid);
    int stat_file = open(stat_path, O_RDONLY | O_CLOEXEC);
    ssize_t got = stat_file >= 0 ? read(stat_file, stat_text, sizeof stat_text - 1) : -1;
    if (stat_file >= 0) close(stat_file);
    stat_text[got > 0 ? got : 0] = 0;
    char *close_paren = strrchr(stat_text, ')');
    long long parent = 0;
    if (close_paren) sscanf(close_paren + 1, " %*c %lld", &parent);
    if (parent != (long long)getpid()) {
        snprintf(error, error_size, "%s: the container's process is not the monitor's child (a runtime that daemonizes it is not supported)", p->external_argv[0]);
        kill((pid_t)pid, SIGKILL);
        return -1;
    }
    return (pid_t)pid;
}

