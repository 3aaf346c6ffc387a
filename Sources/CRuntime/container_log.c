/* The container's output as the CRI logs it ("<RFC3339Nano> stdout|stderr F|P <line>"), to
 * attached clients as it comes, and to journald when it runs. */
#include "internal.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* journald's native protocol: one datagram of FIELD=value lines per record. -1 when there is no
 * journald (the CRI log file is then the only copy). */
static int journal_fd = -1;
static const char *journal_identifier;

void iotkube_journal_open(const char *identifier) {
    if (!identifier || !*identifier) return;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    strncpy(address.sun_path, "/run/systemd/journal/socket", sizeof address.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) { close(fd); return; }
    journal_fd = fd;
    journal_identifier = identifier;
}

static void journal_line(const char *stream, const char *data, size_t length) {
    if (journal_fd < 0) return;
    char record[17000];
    size_t used = 0;
    int n = snprintf(record, sizeof record, "PRIORITY=%d\nSYSLOG_IDENTIFIER=%s\nCONTAINER_ID=%s\nCONTAINER_STREAM=%s\nMESSAGE=",
                     strcmp(stream, "stderr") ? 6 : 3, journal_identifier, journal_identifier, stream);
    if (n < 0) return;
    used = (size_t)n;
    if (length > sizeof record - used - 2) length = sizeof record - used - 2;
    for (size_t i = 0; i < length; i++) record[used++] = data[i] == '\n' ? ' ' : data[i];
    record[used++] = '\n';
    send(journal_fd, record, used, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void log_line(int log, const char *stream, const char *tag, const char *data, size_t length) {
    journal_line(stream, data, length);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char prefix[96];
    int n = snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ %s %s ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec, stream, tag);
    iotkube_write_all(log, prefix, (size_t)n);
    iotkube_write_all(log, data, length);
    iotkube_write_all(log, "\n", 1);
}

/* Reads what is available; writes complete lines ("F") and full buffers ("P"). Returns 0 at EOF. */
int iotkube_forward(struct log_stream *s, int log) {
    ssize_t n = read(s->fd, s->buffer + s->used, sizeof s->buffer - s->used);
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n > 0) iotkube_attach_broadcast(strcmp(s->name, "stdout") == 0 ? '1' : '2', s->buffer + s->used, (size_t)n);
    if (n == 0) {
        if (s->used) log_line(log, s->name, "P", s->buffer, s->used);
        s->used = 0;
        return 0;
    }
    s->used += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < s->used; i++) {
        if (s->buffer[i] == '\n') {
            log_line(log, s->name, "F", s->buffer + start, i - start);
            start = i + 1;
        }
    }
    memmove(s->buffer, s->buffer + start, s->used - start);
    s->used -= start;
    if (s->used == sizeof s->buffer) {
        log_line(log, s->name, "P", s->buffer, s->used);
        s->used = 0;
    }
    return 1;
}

