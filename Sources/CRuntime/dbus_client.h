#ifndef IOTKUBE_DBUS_CLIENT_H
#define IOTKUBE_DBUS_CLIENT_H
#include "dbus_marshal.h"

/* A minimal D-Bus client on the system bus or systemd's own socket (systemd_bus.c, logind_bus.c):
 * one connection, method calls with their replies, and one watched signal. Messages are built
 * and read in the machine's byte order (the peer is on the same machine). */

/* The runtime's own: hidden from the dynamic symbol table, as internal.h's. */
#pragma GCC visibility push(hidden)

#define DBUS_MESSAGE_LIMIT (64 * 1024)
#define DBUS_CALL_TIMEOUT_MS 30000
#define DBUS_MAX_FDS 4

/* Where a call goes: object path, interface, destination (NULL: no destination header). */
struct dbus_target {
    const char *path, *interface, *destination;
};

struct bus {
    int fd;
    uint32_t serial;
    char *error;
    size_t error_size;
    long long deadline;   /* CLOCK_MONOTONIC milliseconds: one call, however many messages, ends by then */
    /* Descriptors that came with the message being read (SCM_RIGHTS; close-on-exec). */
    int fds[DBUS_MAX_FDS];
    int fd_count;
    /* The one signal watched (a boolean argument): kept when it arrives while a reply is read.
     * `watch_sender`: the unique name that alone may send it. `signal_value`: -1 none, else 0/1. */
    const char *watch_interface, *watch_member;
    char watch_sender[256];
    int signal_value;
    /* With `watch_owner_of` set: the bus said that name changed hands (its owner restarted). */
    const char *watch_owner_of;
    int owner_changed;
};

/* What a reply carried: its body (copied, at most `body_size` bytes) and signature. */
struct dbus_reply {
    unsigned char *body;
    size_t body_size, body_length;
    char signature[64];
};

long long iotkube_dbus_now_ms(void);
int iotkube_dbus_fail(struct bus *bus, const char *format, const char *detail);
/* Connects and authenticates. `bus_only`: the system bus alone (with descriptor passing), else
 * systemd's own socket first when root. 0, or -1 with the error set. */
int iotkube_dbus_open(struct bus *bus, int bus_only);
void iotkube_dbus_close(struct bus *bus);
/* Sends a method call; its serial, or -1. */
int iotkube_dbus_call(struct bus *bus, const struct dbus_target *target, const char *member, const char *signature, const struct builder *body);
/* Reads messages until the reply to `serial`: 0 a method return (its body in `out` when given),
 * 1 an error (name and message in `name`/`text`), -1 the connection failed or a message was malformed. */
int iotkube_dbus_reply(struct bus *bus, uint32_t serial, char *name, size_t name_size, char *text, size_t text_size, struct dbus_reply *out);
/* Waits up to `timeout_ms` for the watched signal: 1 (its value in `signal_value`), 0 none came,
 * 2 none yet but more messages wait (64 read: call again), -1 failed. */
int iotkube_dbus_wait_signal(struct bus *bus, int timeout_ms);
/* Closes the descriptors of the last message read. */
void iotkube_dbus_drop_fds(struct bus *bus);

#pragma GCC visibility pop

#endif
