#include "internal.h"
#include "dbus_marshal.h"
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

/* A minimal D-Bus client for systemd's manager (the kubelet's systemd cgroup driver, in C so
 * the monitor can use it too): StartTransientUnit, SetUnitProperties and StopUnit on the system
 * bus, or on systemd's own socket where a board runs no bus daemon. Messages are built and read
 * in the machine's byte order (the peer is on the same machine). */

#define BUS_SOCKET "/run/dbus/system_bus_socket"
#define SYSTEMD_SOCKET "/run/systemd/private"
#define MESSAGE_LIMIT (64 * 1024)

struct bus {
    int fd;
    uint32_t serial;
    char *error;
    size_t error_size;
    long long deadline;   /* CLOCK_MONOTONIC milliseconds: one call, however many messages, ends by then */
};

#define CALL_TIMEOUT_MS 30000

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static int fail(struct bus *bus, const char *format, const char *detail) {
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

/* Reads `count` bytes before the call's deadline; -1 with the reason set. */
static int read_exactly(struct bus *bus, void *bytes, size_t count) {
    unsigned char *p = bytes;
    while (count > 0) {
        long long left = bus->deadline - now_ms();
        if (left <= 0) return fail(bus, "systemd: no answer within %s s", "30");
        struct pollfd ready = { bus->fd, POLLIN, 0 };
        int polled = poll(&ready, 1, (int)left);
        if (polled < 0 && errno == EINTR) continue;
        if (polled == 0) return fail(bus, "systemd: no answer within %s s", "30");
        ssize_t n = recv(bus->fd, p, count, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) return fail(bus, "systemd: the connection closed: %s", n < 0 ? strerror(errno) : "end of stream");
        p += n;
        count -= (size_t)n;
    }
    return 0;
}

/* Reads and drops `count` bytes (a message that is not our reply). */
static int skip(struct bus *bus, size_t count) {
    unsigned char sink[4096];
    while (count > 0) {
        size_t chunk = count < sizeof sink ? count : sizeof sink;
        if (read_exactly(bus, sink, chunk) < 0) return -1;
        count -= chunk;
    }
    return 0;
}

static int send_call(struct bus *bus, struct builder *header, const char *member, const char *signature, const struct builder *body, int to_bus);

/* Sends a method call to systemd's manager (or, with `to_bus`, to the bus itself); its serial or -1. */
static int call(struct bus *bus, const char *member, const char *signature, const struct builder *body, int to_bus) {
    struct builder *h = calloc(1, sizeof *h);
    if (!h) return fail(bus, "systemd: out of memory for %s", member);
    int serial = send_call(bus, h, member, signature, body, to_bus);
    free(h);
    return serial;
}

static int send_call(struct bus *bus, struct builder *header, const char *member, const char *signature, const struct builder *body, int to_bus) {
    uint32_t serial = ++bus->serial;
    uint16_t probe = 1;
    put_byte(header, *(unsigned char *)&probe ? 'l' : 'B');
    put_byte(header, 1);      /* method call */
    put_byte(header, 0);
    put_byte(header, 1);      /* protocol version */
    put_u32(header, (uint32_t)body->length);
    put_u32(header, serial);
    size_t start, at = array_begin(header, 8, &start);
    header_field(header, 1, "o", to_bus ? "/org/freedesktop/DBus" : "/org/freedesktop/systemd1");
    header_field(header, 2, "s", to_bus ? "org.freedesktop.DBus" : "org.freedesktop.systemd1.Manager");
    header_field(header, 3, "s", member);
    header_field(header, 6, "s", to_bus ? "org.freedesktop.DBus" : "org.freedesktop.systemd1");
    if (signature[0]) header_field(header, 8, "g", signature);
    array_end(header, at, start);
    pad(header, 8);
    if (header->overflow || body->overflow) return fail(bus, "systemd: the %s call is too large", member);
    if (write_all(bus->fd, header->data, header->length) < 0 || write_all(bus->fd, body->data, body->length) < 0)
        return fail(bus, "systemd: sending %s failed (the bus closed the connection)", member);
    return (int)serial;
}

static int aligned(size_t *at, size_t alignment, size_t limit) {
    *at = (*at + alignment - 1) / alignment * alignment;
    return *at <= limit ? 0 : -1;
}

/* Reads messages until the reply to `serial`; 0 for a method return, 1 for an error (its name
 * and message in `name`/`text`), -1 when the connection failed or a message was malformed. */
static int read_reply(struct bus *bus, unsigned char *message, size_t message_size, uint32_t serial, char *name, size_t name_size, char *text, size_t text_size);

static int reply(struct bus *bus, uint32_t serial, char *name, size_t name_size, char *text, size_t text_size) {
    unsigned char *message = malloc(2 * MESSAGE_LIMIT + 16);
    if (!message) return fail(bus, "systemd: out of memory for a reply%s", "");
    int result = read_reply(bus, message, 2 * MESSAGE_LIMIT + 16, serial, name, name_size, text, text_size);
    free(message);
    return result;
}

static int read_reply(struct bus *bus, unsigned char *message, size_t message_size, uint32_t serial, char *name, size_t name_size, char *text, size_t text_size) {
    uint16_t probe = 1;
    const unsigned char native = *(unsigned char *)&probe ? 'l' : 'B';
    for (;;) {
        if (read_exactly(bus, message, 16) < 0) return -1;
        if (message[0] != native) return fail(bus, "systemd: a message in the other byte order%s", "");
        uint32_t body_length, fields_length;
        memcpy(&body_length, message + 4, 4);
        memcpy(&fields_length, message + 12, 4);
        size_t header_end = ((size_t)fields_length + 16 + 7) / 8 * 8;
        /* Headers are small; a huge one is no reply of systemd's: drop the message. */
        if (fields_length > MESSAGE_LIMIT) {
            if (skip(bus, header_end - 16) < 0 || skip(bus, body_length) < 0) return -1;
            continue;
        }
        if (read_exactly(bus, message + 16, header_end - 16) < 0) return -1;
        int type = message[1];
        uint32_t reply_serial = 0;
        const char *error_name = NULL, *body_signature = "";
        size_t at = 16, fields_end = 16 + (size_t)fields_length;
        while (at < fields_end) {
            if (aligned(&at, 8, fields_end) < 0 || fields_end - at < 3) break;
            unsigned char code = message[at++];
            /* A one-letter signature: "s", "o", "g" or "u" (all that header fields use). */
            if (message[at] != 1 || message[at + 2] != 0) return fail(bus, "systemd: a malformed message header%s", "");
            char kind = (char)message[at + 1];
            at += 3;
            if (kind == 's' || kind == 'o') {
                if (aligned(&at, 4, fields_end) < 0 || fields_end - at < 5) return fail(bus, "systemd: a malformed message header%s", "");
                uint32_t length;
                memcpy(&length, message + at, 4);
                if (length > fields_end - at - 5 || message[at + 4 + length] != 0) return fail(bus, "systemd: a malformed message header%s", "");
                if (code == 4) error_name = (const char *)message + at + 4;
                at += 4 + (size_t)length + 1;
            } else if (kind == 'g') {
                if (fields_end - at < 2) return fail(bus, "systemd: a malformed message header%s", "");
                size_t length = message[at];
                if (length > fields_end - at - 2 || message[at + 1 + length] != 0) return fail(bus, "systemd: a malformed message header%s", "");
                if (code == 8) body_signature = (const char *)message + at + 1;
                at += 1 + length + 1;
            } else if (kind == 'u') {
                if (aligned(&at, 4, fields_end) < 0 || fields_end - at < 4) return fail(bus, "systemd: a malformed message header%s", "");
                if (code == 5) memcpy(&reply_serial, message + at, 4);
                at += 4;
            } else {
                return fail(bus, "systemd: a message header field of an unexpected type%s", "");
            }
        }
        /* Signals and anything else: read past. (The bus daemon forwards a reply only from the
         * peer the call went to.) */
        int ours = (type == 2 || type == 3) && reply_serial == serial;
        if (!ours || body_length > message_size - header_end) {
            if (skip(bus, body_length) < 0) return -1;
            if (ours) return fail(bus, "systemd: a reply over 64 KiB%s", "");
            continue;
        }
        if (read_exactly(bus, message + header_end, body_length) < 0) return -1;
        if (type == 2) return 0;
        snprintf(name, name_size, "%s", error_name ? error_name : "an unnamed error");
        text[0] = 0;
        if (body_signature[0] == 's' && body_length >= 5) {
            uint32_t length;
            memcpy(&length, message + header_end, 4);
            if (length <= body_length - 5 && message[header_end + 4 + length] == 0)
                snprintf(text, text_size, "%s", (const char *)message + header_end + 4);
        }
        return 1;
    }
}

/* Connects and authenticates (EXTERNAL, as the agent's uid); on the bus, says Hello. As root,
 * systemd's own socket comes first, as with systemctl: no bus daemon in between, and no other
 * client of the bus can send us messages there. */
static int bus_open(struct bus *bus) {
    int root = getuid() == 0;
    const char *paths[2] = { root ? SYSTEMD_SOCKET : BUS_SOCKET, root ? BUS_SOCKET : SYSTEMD_SOCKET };
    for (int i = 0; i < 2; i++) {
        int on_bus = !strcmp(paths[i], BUS_SOCKET);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return fail(bus, "systemd: socket: %s", strerror(errno));
        struct timeval timeout = { 30, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        snprintf(address.sun_path, sizeof address.sun_path, "%s", paths[i]);
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
            close(fd);
            if (i == 0) continue;
            return fail(bus, "systemd: cannot reach systemd over D-Bus (" SYSTEMD_SOCKET " or " BUS_SOCKET "): %s; the systemd cgroup driver needs systemd as init", strerror(errno));
        }
        bus->fd = fd;
        char uid[16], line[80] = "\0AUTH EXTERNAL ";
        snprintf(uid, sizeof uid, "%u", (unsigned)getuid());
        size_t length = 15;
        for (const char *c = uid; *c; c++) length += (size_t)snprintf(line + length, sizeof line - length, "%02x", (unsigned char)*c);
        length += (size_t)snprintf(line + length, sizeof line - length, "\r\n");
        char answer[256];
        size_t got = 0;
        int ok = write_all(fd, line, length) == 0;
        while (ok && got < sizeof answer - 1) {
            if (read_exactly(bus, answer + got, 1) < 0) { ok = 0; break; }
            if (answer[got++] == '\n') break;
        }
        answer[got] = 0;
        if (!ok || strncmp(answer, "OK ", 3) != 0 || write_all(fd, "BEGIN\r\n", 7) < 0) {
            close(fd);
            bus->fd = -1;
            return fail(bus, "systemd: D-Bus authentication refused at %s", paths[i]);
        }
        bus->serial = 0;
        if (on_bus) {
            struct builder *empty = calloc(1, sizeof *empty);
            int serial = empty ? call(bus, "Hello", "", empty, 1) : fail(bus, "systemd: out of memory%s", "");
            free(empty);
            char name[256], text[512];
            if (serial < 0) { close(fd); bus->fd = -1; return -1; }
            int result = reply(bus, (uint32_t)serial, name, sizeof name, text, sizeof text);
            if (result != 0) { close(fd); bus->fd = -1; return result < 0 ? -1 : fail(bus, "systemd: the bus refused Hello: %s", name); }
        }
        return 0;
    }
    return -1;
}

/* One call to the manager; 0 done, 1 refused with `refusal` (another result from the caller's
 * view), -1 failed (the error filled in). */
static int manager_call(const char *member, const char *signature, const struct builder *body, const char *unit,
                        const char *tolerated, long long deadline, char *error, size_t error_size, char *unknown_property, size_t unknown_size) {
    struct bus bus = { -1, 0, error, error_size, deadline };
    if (bus_open(&bus) < 0) return -1;
    int serial = call(&bus, member, signature, body, 0);
    int result = -1;
    if (serial >= 0) {
        char name[256], text[512];
        result = reply(&bus, (uint32_t)serial, name, sizeof name, text, sizeof text);
        if (result == 1) {
            if (tolerated && !strcmp(name, tolerated)) {
                result = 1;
            } else {
                snprintf(error, error_size, "systemd refused %s of %s: %s (%s)", member, unit, text[0] ? text : name, name);
                result = -1;
                /* An older systemd: "Cannot set property OOMPolicy, or unknown property." */
                const char *prefix = "Cannot set property ";
                const char *comma = strchr(text, ',');
                if (unknown_property && !strcmp(name, "org.freedesktop.DBus.Error.PropertyReadOnly") && !strncmp(text, prefix, strlen(prefix))
                    && comma && (size_t)(comma - text) - strlen(prefix) < unknown_size) {
                    snprintf(unknown_property, unknown_size, "%.*s", (int)(comma - text - strlen(prefix)), text + strlen(prefix));
                    result = -2;
                }
            }
        }
    }
    close(bus.fd);
    return result;
}

/* StartTransientUnit or SetUnitProperties; properties marked optional that this systemd does
 * not know (it names them one at a time) are left out and the call made again. */
static int set_properties_call(int start, const char *unit, const struct iotkube_unit_property *properties, int count,
                               char *error, size_t error_size) {
    if (count < 0 || count > 64) { snprintf(error, error_size, "systemd: %d properties for %s", count, unit); return -1; }
    int dropped[64] = { 0 };
    long long deadline = now_ms() + CALL_TIMEOUT_MS;   /* for every attempt together */
    for (int attempt = 0; attempt < 8; attempt++) {
        struct iotkube_unit_property kept[64];
        int kept_count = 0;
        for (int i = 0; i < count; i++) if (!dropped[i]) kept[kept_count++] = properties[i];
        struct builder *body = calloc(1, sizeof *body);
        if (!body) { snprintf(error, error_size, "systemd: out of memory"); return -1; }
        put_string(body, unit);
        if (start) put_string(body, "replace"); else put_u32(body, 1);   /* runtime: until the next boot, as the unit is */
        put_properties(body, kept, kept_count);
        if (start) {
            size_t elements, at = array_begin(body, 8, &elements);   /* no auxiliary units */
            array_end(body, at, elements);
        }
        char unknown[128] = "";
        int result = start
            ? manager_call("StartTransientUnit", "ssa(sv)a(sa(sv))", body, unit, "org.freedesktop.systemd1.UnitExists", deadline, error, error_size, unknown, sizeof unknown)
            : manager_call("SetUnitProperties", "sba(sv)", body, unit, NULL, deadline, error, error_size, unknown, sizeof unknown);
        free(body);
        if (result != -2) return result;
        int found = 0;
        for (int i = 0; i < count; i++) {
            if (!dropped[i] && properties[i].optional && !strcmp(properties[i].name, unknown)) { dropped[i] = 1; found = 1; }
        }
        if (!found) return -1;
    }
    return -1;
}

int iotkube_systemd_start_transient_unit(const char *unit, const struct iotkube_unit_property *properties, int count,
                                         char *error, size_t error_size) {
    return set_properties_call(1, unit, properties, count, error, error_size);
}

int iotkube_systemd_set_unit_properties(const char *unit, const struct iotkube_unit_property *properties, int count,
                                        char *error, size_t error_size) {
    return set_properties_call(0, unit, properties, count, error, error_size);
}

int iotkube_systemd_stop_unit(const char *unit, char *error, size_t error_size) {
    struct builder *body = calloc(1, sizeof *body);
    if (!body) { snprintf(error, error_size, "systemd: out of memory"); return -1; }
    put_string(body, unit);
    put_string(body, "replace");
    int result = manager_call("StopUnit", "ss", body, unit, "org.freedesktop.systemd1.NoSuchUnit", now_ms() + CALL_TIMEOUT_MS, error, error_size, NULL, 0);
    free(body);
    return result < 0 ? -1 : 0;
}

int iotkube_wait_for_cgroup(long long pid, const char *cgroup, int timeout_ms) {
    char path[64], content[4096];
    snprintf(path, sizeof path, "/proc/%lld/cgroup", pid);
    size_t wanted = strlen(cgroup);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -1;
        ssize_t n = read(fd, content, sizeof content - 1);
        close(fd);
        if (n < 0) return -1;
        content[n] = 0;
        /* The unified hierarchy's line: "0::<path>". */
        for (char *line = content; line && *line; ) {
            char *end = strchr(line, '\n');
            if (end) *end = 0;
            if (!strncmp(line, "0::", 3) && strlen(line + 3) == wanted && !memcmp(line + 3, cgroup, wanted)) return 0;
            line = end ? end + 1 : NULL;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long elapsed = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed > timeout_ms) { errno = ETIMEDOUT; return -1; }
        usleep(2000);
    }
}
