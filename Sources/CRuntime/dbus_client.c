#include "internal.h"
#include "dbus_client.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUS_SOCKET "/run/dbus/system_bus_socket"
#define SYSTEMD_SOCKET "/run/systemd/private"

long long iotkube_dbus_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

int iotkube_dbus_fail(struct bus *bus, const char *format, const char *detail) {
    snprintf(bus->error, bus->error_size, format, detail);
    return -1;
}

static int write_all(int fd, const void *bytes, size_t count) {
    const unsigned char *p = bytes;
    while (count > 0) {
        ssize_t n = send(fd, p, count, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        count -= (size_t)n;
    }
    return 0;
}

void iotkube_dbus_drop_fds(struct bus *bus) {
    for (int i = 0; i < bus->fd_count; i++) if (bus->fds[i] >= 0) close(bus->fds[i]);
    bus->fd_count = 0;
}

/* Keeps the descriptors a read brought (at most DBUS_MAX_FDS; the rest are closed). */
static void keep_fds(struct bus *bus, struct msghdr *header) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c; c = CMSG_NXTHDR(header, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (bus->fd_count < DBUS_MAX_FDS) bus->fds[bus->fd_count++] = fd; else close(fd);
        }
    }
}

/* Reads `count` bytes before the call's deadline; -1 with the reason set. */
static int read_exactly(struct bus *bus, void *bytes, size_t count) {
    unsigned char *p = bytes;
    while (count > 0) {
        long long left = bus->deadline - iotkube_dbus_now_ms();
        if (left <= 0) return iotkube_dbus_fail(bus, "D-Bus: no answer within %s s", "30");
        struct pollfd ready = { bus->fd, POLLIN, 0 };
        int polled = poll(&ready, 1, (int)left);
        if (polled < 0 && errno == EINTR) continue;
        if (polled == 0) return iotkube_dbus_fail(bus, "D-Bus: no answer within %s s", "30");
        struct iovec part = { p, count };
        union { struct cmsghdr align; char space[CMSG_SPACE(DBUS_MAX_FDS * sizeof(int))]; } control;
        struct msghdr header = { .msg_iov = &part, .msg_iovlen = 1, .msg_control = control.space, .msg_controllen = sizeof control.space };
        ssize_t n = recvmsg(bus->fd, &header, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return iotkube_dbus_fail(bus, "D-Bus: the connection closed: %s", n < 0 ? strerror(errno) : "end of stream");
        keep_fds(bus, &header);
        p += n;
        count -= (size_t)n;
    }
    return 0;
}

/* Reads and drops `count` bytes (a message that is not for us). */
static int skip(struct bus *bus, size_t count) {
    unsigned char sink[4096];
    while (count > 0) {
        size_t chunk = count < sizeof sink ? count : sizeof sink;
        if (read_exactly(bus, sink, chunk) < 0) return -1;
        count -= chunk;
    }
    return 0;
}

static int send_call(struct bus *bus, struct builder *header, const struct dbus_target *target, const char *member, const char *signature, const struct builder *body) {
    uint32_t serial = ++bus->serial;
    uint16_t probe = 1;
    put_byte(header, *(unsigned char *)&probe ? 'l' : 'B');
    put_byte(header, 1);      /* method call */
    put_byte(header, 0);
    put_byte(header, 1);      /* protocol version */
    put_u32(header, (uint32_t)body->length);
    put_u32(header, serial);
    size_t start, at = array_begin(header, 8, &start);
    header_field(header, 1, "o", target->path);
    header_field(header, 2, "s", target->interface);
    header_field(header, 3, "s", member);
    if (target->destination) header_field(header, 6, "s", target->destination);
    if (signature[0]) header_field(header, 8, "g", signature);
    array_end(header, at, start);
    pad(header, 8);
    if (header->overflow || body->overflow) return iotkube_dbus_fail(bus, "D-Bus: the %s call is too large", member);
    if (write_all(bus->fd, header->data, header->length) < 0 || write_all(bus->fd, body->data, body->length) < 0)
        return iotkube_dbus_fail(bus, "D-Bus: sending %s failed (the peer closed the connection)", member);
    return (int)serial;
}

int iotkube_dbus_call(struct bus *bus, const struct dbus_target *target, const char *member, const char *signature, const struct builder *body) {
    struct builder *h = calloc(1, sizeof *h);
    if (!h) return iotkube_dbus_fail(bus, "D-Bus: out of memory for %s", member);
    int serial = send_call(bus, h, target, member, signature, body);
    free(h);
    return serial;
}

static int aligned(size_t *at, size_t alignment, size_t limit) {
    *at = (*at + alignment - 1) / alignment * alignment;
    return *at <= limit ? 0 : -1;
}

/* The header fields a message names (pointers into the message). */
struct fields {
    uint32_t reply_serial;
    const char *error_name, *signature, *interface, *member, *sender;
};

static int parse_fields(struct bus *bus, const unsigned char *message, size_t fields_end, struct fields *f) {
    size_t at = 16;
    *f = (struct fields){ 0, NULL, "", NULL, NULL, NULL };
    while (at < fields_end) {
        if (aligned(&at, 8, fields_end) < 0 || at == fields_end) break;
        if (fields_end - at < 4) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
        unsigned char code = message[at++];
        /* A one-letter signature: "s", "o", "g" or "u" (all that header fields use). */
        if (message[at] != 1 || message[at + 2] != 0) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
        char kind = (char)message[at + 1];
        at += 3;
        if (kind == 's' || kind == 'o') {
            if (aligned(&at, 4, fields_end) < 0 || fields_end - at < 5) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
            uint32_t length;
            memcpy(&length, message + at, 4);
            if (length > fields_end - at - 5 || message[at + 4 + length] != 0) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
            const char *text = (const char *)message + at + 4;
            if (code == 2) f->interface = text;
            if (code == 3) f->member = text;
            if (code == 4) f->error_name = text;
            if (code == 7) f->sender = text;
            at += 4 + (size_t)length + 1;
        } else if (kind == 'g') {
            if (fields_end - at < 2) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
            size_t length = message[at];
            if (length > fields_end - at - 2 || message[at + 1 + length] != 0) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
            if (code == 8) f->signature = (const char *)message + at + 1;
            at += 1 + length + 1;
        } else if (kind == 'u') {
            if (aligned(&at, 4, fields_end) < 0 || fields_end - at < 4) return iotkube_dbus_fail(bus, "D-Bus: a malformed message header%s", "");
            if (code == 5) memcpy(&f->reply_serial, message + at, 4);
            at += 4;
        } else {
            return iotkube_dbus_fail(bus, "D-Bus: a message header field of an unexpected type%s", "");
        }
    }
    return 0;
}

/* The watched signal from its sender: its boolean kept in `signal_value`. NameOwnerChanged of
 * the watched name, from the bus itself: `owner_changed`. */
static void note_signal(struct bus *bus, const struct fields *f, const unsigned char *body, size_t length) {
    if (!bus->watch_member || !f->member || !f->interface || !f->sender) return;
    if (bus->watch_owner_of && !strcmp(f->sender, "org.freedesktop.DBus") && !strcmp(f->interface, "org.freedesktop.DBus")
        && !strcmp(f->member, "NameOwnerChanged") && !strcmp(f->signature, "sss") && length >= 5) {
        uint32_t name_length;
        memcpy(&name_length, body, 4);
        size_t wanted = strlen(bus->watch_owner_of);
        if (name_length == wanted && length >= 5 + (size_t)name_length && !memcmp(body + 4, bus->watch_owner_of, wanted)) bus->owner_changed = 1;
        return;
    }
    if (strcmp(f->member, bus->watch_member) || strcmp(f->interface, bus->watch_interface) || strcmp(f->sender, bus->watch_sender)) return;
    if (strcmp(f->signature, "b") || length < 4) return;
    uint32_t value;
    memcpy(&value, body, 4);
    if (value <= 1) bus->signal_value = (int)value;
}

/* Reads one message: 0 or 1 when it is the reply to `serial` (a return or an error), 2 when it
 * was something else (a watched signal is noted), -1 when reading failed. */
static int read_message(struct bus *bus, unsigned char *message, size_t message_size, uint32_t serial,
                        char *name, size_t name_size, char *text, size_t text_size, struct dbus_reply *out) {
    uint16_t probe = 1;
    const unsigned char native = *(unsigned char *)&probe ? 'l' : 'B';
    iotkube_dbus_drop_fds(bus);
    if (read_exactly(bus, message, 16) < 0) return -1;
    if (message[0] != 'l' && message[0] != 'B') return iotkube_dbus_fail(bus, "D-Bus: a message of no byte order%s", "");
    uint32_t body_length, fields_length;
    memcpy(&body_length, message + 4, 4);
    memcpy(&fields_length, message + 12, 4);
    if (message[0] != native) {
        body_length = __builtin_bswap32(body_length);
        fields_length = __builtin_bswap32(fields_length);
    }
    /* D-Bus messages are at most 128 MiB: larger lengths are no message (and would wrap a
     * 32-bit board's size_t below). */
    if (fields_length > (128u << 20) || body_length > (128u << 20)) return iotkube_dbus_fail(bus, "D-Bus: a message longer than 128 MiB%s", "");
    size_t header_end = ((size_t)fields_length + 16 + 7) / 8 * 8;
    /* Headers are small; a huge one is no reply for us, nor is one in the other byte order (any
     * client may send us one; the bus passes it on as sent): skip it. */
    if (fields_length > DBUS_MESSAGE_LIMIT || message[0] != native) {
        if (skip(bus, header_end - 16) < 0 || skip(bus, body_length) < 0) return -1;
        return 2;
    }
    if (read_exactly(bus, message + 16, header_end - 16) < 0) return -1;
    int type = message[1];
    struct fields f;
    if (parse_fields(bus, message, 16 + (size_t)fields_length, &f) < 0) {
        /* Not understood: not ours to act on (a reply we wait for then times out). */
        return skip(bus, body_length) < 0 ? -1 : 2;
    }
    int ours = (type == 2 || type == 3) && serial != 0 && f.reply_serial == serial;
    int signal = type == 4 && bus->watch_member != NULL;
    if ((!ours && !signal) || body_length > message_size - header_end) {
        if (skip(bus, body_length) < 0) return -1;
        if (ours) return iotkube_dbus_fail(bus, "D-Bus: a reply over 64 KiB%s", "");
        return 2;
    }
    if (read_exactly(bus, message + header_end, body_length) < 0) return -1;
    const unsigned char *body = message + header_end;
    if (signal) {
        note_signal(bus, &f, body, body_length);
        return 2;
    }
    if (type == 2) {
        if (out) {
            if (body_length > out->body_size) return iotkube_dbus_fail(bus, "D-Bus: a reply larger than expected%s", "");
            memcpy(out->body, body, body_length);
            out->body_length = body_length;
            snprintf(out->signature, sizeof out->signature, "%s", f.signature);
        }
        return 0;
    }
    snprintf(name, name_size, "%s", f.error_name ? f.error_name : "an unnamed error");
    text[0] = 0;
    if (f.signature[0] == 's' && body_length >= 5) {
        uint32_t length;
        memcpy(&length, body, 4);
        if (length <= body_length - 5 && body[4 + length] == 0) snprintf(text, text_size, "%s", (const char *)body + 4);
    }
    return 1;
}

int iotkube_dbus_reply(struct bus *bus, uint32_t serial, char *name, size_t name_size, char *text, size_t text_size, struct dbus_reply *out) {
    unsigned char *message = malloc(2 * DBUS_MESSAGE_LIMIT + 16);
    if (!message) return iotkube_dbus_fail(bus, "D-Bus: out of memory for a reply%s", "");
    int result;
    do {
        result = read_message(bus, message, 2 * DBUS_MESSAGE_LIMIT + 16, serial, name, name_size, text, text_size, out);
    } while (result == 2);
    free(message);
    return result;
}

int iotkube_dbus_wait_signal(struct bus *bus, int timeout_ms) {
    long long until = iotkube_dbus_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    unsigned char *message = NULL;
    int result = 0;
    /* At most 64 messages a call: a client flooding the connection cannot hold the thread. */
    int messages = 0;
    for (; bus->signal_value < 0 && !bus->owner_changed && messages < 64; ) {
        long long left = until - iotkube_dbus_now_ms();
        struct pollfd ready = { bus->fd, POLLIN, 0 };
        int polled = poll(&ready, 1, left > 0 ? (int)left : 0);
        if (polled < 0 && errno == EINTR) continue;
        if (polled < 0) { result = iotkube_dbus_fail(bus, "D-Bus: poll: %s", strerror(errno)); break; }
        if (polled == 0) break;
        if (!message && !(message = malloc(2 * DBUS_MESSAGE_LIMIT + 16))) { result = iotkube_dbus_fail(bus, "D-Bus: out of memory%s", ""); break; }
        /* A message has begun: all of it within the usual time. */
        bus->deadline = iotkube_dbus_now_ms() + DBUS_CALL_TIMEOUT_MS;
        char name[8], text[8];
        if (read_message(bus, message, 2 * DBUS_MESSAGE_LIMIT + 16, 0, name, sizeof name, text, sizeof text, NULL) < 0) { result = -1; break; }
        messages++;
    }
    iotkube_dbus_drop_fds(bus);
    free(message);
    if (result < 0) return -1;
    if (bus->signal_value >= 0) return 1;
    if (bus->owner_changed) return iotkube_dbus_fail(bus, "%s restarted (its connection changed): connecting again", bus->watch_owner_of);
    return messages >= 64 ? 2 : 0;
}

static int authenticate(struct bus *bus, int with_fds, const char *path) {
    char uid[16], line[80] = "\0AUTH EXTERNAL ";
    snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
    size_t length = 15;
    for (const char *c = uid; *c; c++) length += (size_t)snprintf(line + length, sizeof line - length, "%02x", (unsigned char)*c);
    length += (size_t)snprintf(line + length, sizeof line - length, "\r\n");
    for (int step = 0; step < 1 + with_fds; step++) {
        const char *sent = step == 0 ? line : "NEGOTIATE_UNIX_FD\r\n";
        size_t sent_length = step == 0 ? length : strlen(sent);
        char answer[256];
        size_t got = 0;
        int ok = write_all(bus->fd, sent, sent_length) == 0;
        while (ok && got < sizeof answer - 1) {
            if (read_exactly(bus, answer + got, 1) < 0) { ok = 0; break; }
            if (answer[got++] == '\n') break;
        }
        answer[got] = 0;
        const char *expected = step == 0 ? "OK " : "AGREE_UNIX_FD";
        if (!ok || strncmp(answer, expected, strlen(expected)) != 0) {
            return iotkube_dbus_fail(bus, step == 0 ? "D-Bus: authentication refused at %s" : "D-Bus: %s does not pass descriptors", path);
        }
    }
    if (write_all(bus->fd, "BEGIN\r\n", 7) < 0) return iotkube_dbus_fail(bus, "D-Bus: authentication failed at %s", path);
    return 0;
}

/* The system bus: DBUS_SYSTEM_BUS_ADDRESS when it names a socket path ("unix:path=…", as sd-bus
 * and libdbus read it), else the standard path. */
static void system_bus_path(char *path, size_t size) {
    const char *address = getenv("DBUS_SYSTEM_BUS_ADDRESS");
    const char *prefix = "unix:path=";
    if (address && !strncmp(address, prefix, strlen(prefix))) {
        const char *start = address + strlen(prefix);
        size_t length = strcspn(start, ",;");
        if (length > 0 && length < size && length < sizeof ((struct sockaddr_un *)0)->sun_path) {
            memcpy(path, start, length);
            path[length] = 0;
            return;
        }
    }
    snprintf(path, size, "%s", BUS_SOCKET);
}

void iotkube_dbus_close(struct bus *bus) {
    iotkube_dbus_drop_fds(bus);
    if (bus->fd >= 0) close(bus->fd);
    bus->fd = -1;
}

int iotkube_dbus_open(struct bus *bus, int bus_only) {
    int root = getuid() == 0;
    char bus_path[108];
    system_bus_path(bus_path, sizeof bus_path);
    const char *paths[2] = { root && !bus_only ? SYSTEMD_SOCKET : bus_path, root && !bus_only ? bus_path : SYSTEMD_SOCKET };
    bus->fd_count = 0;
    bus->signal_value = -1;
    for (int i = 0; i < (bus_only ? 1 : 2); i++) {
        int on_bus = !strcmp(paths[i], bus_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return iotkube_dbus_fail(bus, "D-Bus: socket: %s", strerror(errno));
        /* connect and send wait at most this long (reads poll against the call's deadline). */
        struct timeval timeout = { 30, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        snprintf(address.sun_path, sizeof address.sun_path, "%s", paths[i]);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
            int error = errno;
            close(fd);
            if (i == 0 && !bus_only) continue;
            if (bus_only) {
                snprintf(bus->error, bus->error_size, "D-Bus: cannot reach the system bus at %s: %s", bus_path, strerror(error));
                return -1;
            }
            return iotkube_dbus_fail(bus, "systemd: cannot reach systemd over D-Bus (" SYSTEMD_SOCKET " or " BUS_SOCKET "): %s; the systemd cgroup driver needs systemd as init", strerror(error));
        }
        bus->fd = fd;
        bus->serial = 0;
        if (authenticate(bus, bus_only, paths[i]) < 0) { iotkube_dbus_close(bus); return -1; }
        if (on_bus) {
            static const struct dbus_target bus_daemon = { "/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus" };
            struct builder *empty = calloc(1, sizeof *empty);
            int serial = empty ? iotkube_dbus_call(bus, &bus_daemon, "Hello", "", empty) : iotkube_dbus_fail(bus, "D-Bus: out of memory%s", "");
            free(empty);
            char name[256], text[512];
            if (serial < 0) { iotkube_dbus_close(bus); return -1; }
            int result = iotkube_dbus_reply(bus, (uint32_t)serial, name, sizeof name, text, sizeof text, NULL);
            if (result != 0) { iotkube_dbus_close(bus); return result < 0 ? -1 : iotkube_dbus_fail(bus, "D-Bus: the bus refused Hello: %s", name); }
        }
        return 0;
    }
    return -1;
}
