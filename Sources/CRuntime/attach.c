/* The monitor's attach server: clients of <state>/attach (a stream socket in the state
 * directory, root's alone) get the container's output as it comes and write its stdin and its
 * terminal's size, as conmon's attach socket does for CRI-O. Frames both ways: a kind byte, a
 * 4-byte big-endian length, the payload.
 *   to clients:   '1' stdout bytes, '2' stderr bytes, 'x' the container exited (then the end)
 *   from clients: 'i' stdin bytes (at most 4096), 'c' the client's end of stdin, 'r' a terminal
 *                 size (4 bytes: columns, rows, big-endian)
 * Everything is non-blocking: a client that does not keep up with the output is dropped, a
 * container that does not read its stdin holds only the stdin of its clients, never the loop. */
#define _GNU_SOURCE
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#define CLIENTS 8
#define MAX_INPUT 4096
#define HEADER 5

struct client {
    int fd;
    unsigned char buffer[HEADER + MAX_INPUT];
    size_t used;
    int sent_stdin;
    int dead;
};

static struct {
    int listener;
    int spare;                 /* a descriptor given up to accept (and close) when none are left */
    char path[64];
    int stdin_fd;
    int terminal;              /* our own duplicate of the pty master, for sizes */
    int stdin_mode;
    int close_stdin;           /* stdinOnce: close once what is pending is written */
    struct client clients[CLIENTS];
    int count;
    unsigned char pending[MAX_INPUT];
    size_t pending_used, pending_offset;
    int polled_listener, polled_stdin, polled_clients;
} attach = { .listener = -1, .spare = -1, .stdin_fd = -1, .terminal = -1 };

int iotkube_attach_start(const char *state_directory, int stdin_fd, int terminal, int stdin_mode) {
    attach.stdin_fd = stdin_fd;
    attach.stdin_mode = stdin_mode;
    if (terminal >= 0) attach.terminal = fcntl(terminal, F_DUPFD_CLOEXEC, 3);
    int directory = open(state_directory, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (directory < 0 || listener < 0) {
        if (directory >= 0) close(directory);
        if (listener >= 0) close(listener);
        return -1;
    }
    /* Bound through the directory's descriptor (the path may be longer than an address holds),
     * created 0600 from the start; `directory` stays open: it is how the socket is removed. */
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    snprintf(address.sun_path, sizeof address.sun_path, "/proc/self/fd/%d/attach", directory);
    snprintf(attach.path, sizeof attach.path, "%s", address.sun_path);
    unlink(address.sun_path);
    mode_t previous = umask(077);
    int bound = bind(listener, (struct sockaddr *)&address, sizeof address);
    umask(previous);
    if (bound != 0 || listen(listener, CLIENTS) != 0) {
        close(listener);
        close(directory);
        attach.path[0] = 0;
        return -1;
    }
    attach.listener = listener;
    attach.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return 0;
}

static void put_header(unsigned char *header, char kind, size_t length) {
    header[0] = (unsigned char)kind;
    header[1] = (unsigned char)(length >> 24);
    header[2] = (unsigned char)(length >> 16);
    header[3] = (unsigned char)(length >> 8);
    header[4] = (unsigned char)length;
}

/* Marks a client gone; it leaves the table in sweep(), never in the middle of a pass. */
static void kill_client(struct client *client) {
    if (client->dead) return;
    client->dead = 1;
    /* stdinOnce: the first attached session that used stdin ending closes it (a terminal stays:
     * closing it would hang the container up). */
    if (client->sent_stdin && attach.stdin_mode == 2 && attach.terminal < 0) attach.close_stdin = 1;
}

static void sweep(void) {
    int kept = 0;
    for (int i = 0; i < attach.count; i++) {
        if (attach.clients[i].dead) {
            close(attach.clients[i].fd);
            continue;
        }
        if (kept != i) attach.clients[kept] = attach.clients[i];
        kept++;
    }
    attach.count = kept;
}

static void send_frame(struct client *client, char kind, const char *data, size_t length) {
    static unsigned char message[HEADER + 16384];
    if (length > sizeof message - HEADER) length = sizeof message - HEADER;
    put_header(message, kind, length);
    if (length) memcpy(message + HEADER, data, length);
    ssize_t sent;
    do { sent = send(client->fd, message, HEADER + length, MSG_DONTWAIT | MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    /* A partial frame would corrupt the stream: a client without room for a whole one is gone. */
    if (sent != (ssize_t)(HEADER + length)) kill_client(client);
}

void iotkube_attach_broadcast(char kind, const char *data, size_t length) {
    if (length == 0) return;
    for (int i = 0; i < attach.count; i++) {
        if (!attach.clients[i].dead) send_frame(&attach.clients[i], kind, data, length);
    }
}

int iotkube_attach_fill_poll(struct pollfd *fds, int room, int accepting) {
    int count = 0;
    attach.polled_listener = attach.polled_stdin = -1;
    attach.polled_clients = 0;
    if (attach.listener >= 0 && accepting && count < room) { fds[count] = (struct pollfd){ attach.listener, POLLIN, 0 }; attach.polled_listener = count++; }
    if (attach.stdin_fd >= 0 && attach.pending_used > attach.pending_offset && count < room) {
        fds[count] = (struct pollfd){ attach.stdin_fd, POLLOUT, 0 };
        attach.polled_stdin = count++;
    }
    /* Every client, always: a hang-up is seen even while its input waits (events 0). */
    for (int i = 0; i < attach.count && count < room; i++) {
        struct client *client = &attach.clients[i];
        short events = client->used < sizeof client->buffer ? POLLIN : 0;
        fds[count++] = (struct pollfd){ client->fd, events, 0 };
        attach.polled_clients++;
    }
    return count;
}

static void accept_client(void) {
    int fd = accept4(attach.listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        if ((errno == EMFILE || errno == ENFILE) && attach.spare >= 0) {
            /* Out of descriptors: take the waiting connection off the queue and refuse it,
             * instead of finding the listener readable forever. */
            close(attach.spare);
            int refused = accept4(attach.listener, NULL, NULL, SOCK_CLOEXEC);
            if (refused >= 0) close(refused);
            attach.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        return;
    }
    struct ucred peer;
    socklen_t size = sizeof peer;
    if (attach.count >= CLIENTS || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &size) != 0 || peer.uid != 0) {
        close(fd);   /* full, or not the agent (root): refused at once, never left waiting */
        return;
    }
    int buffer = 256 << 10;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    struct client *client = &attach.clients[attach.count++];
    memset(client, 0, sizeof *client);
    client->fd = fd;
}

/* Acts on a client's complete frames while no stdin waits to be written. */
static void process(struct client *client) {
    size_t offset = 0;
    while (!client->dead && attach.pending_used == attach.pending_offset && client->used - offset >= HEADER) {
        unsigned char *frame = client->buffer + offset;
        size_t length = (size_t)frame[1] << 24 | (size_t)frame[2] << 16 | (size_t)frame[3] << 8 | frame[4];
        if (length > MAX_INPUT) { kill_client(client); break; }
        if (client->used - offset < HEADER + length) break;
        const unsigned char *payload = frame + HEADER;
        switch (frame[0]) {
        case 'i':
            client->sent_stdin = 1;
            if (attach.stdin_fd >= 0 && length > 0) {
                memcpy(attach.pending, payload, length);
                attach.pending_used = length;
                attach.pending_offset = 0;
            }
            break;
        case 'c':
            client->sent_stdin = 1;
            if (attach.stdin_mode == 2 && attach.terminal < 0) attach.close_stdin = 1;
            break;
        case 'r':
            if (length == 4 && attach.terminal >= 0) {
                struct winsize size = { .ws_col = (unsigned short)(payload[0] << 8 | payload[1]), .ws_row = (unsigned short)(payload[2] << 8 | payload[3]) };
                ioctl(attach.terminal, TIOCSWINSZ, &size);
            }
            break;
        default:
            kill_client(client);
            break;
        }
        offset += HEADER + length;
    }
    if (offset > 0 && !client->dead) {
        memmove(client->buffer, client->buffer + offset, client->used - offset);
        client->used -= offset;
    }
}

static void write_stdin(void) {
    if (attach.stdin_fd >= 0 && attach.pending_used > attach.pending_offset) {
        ssize_t n = write(attach.stdin_fd, attach.pending + attach.pending_offset, attach.pending_used - attach.pending_offset);
        if (n > 0) attach.pending_offset += (size_t)n;
        /* The container closed its stdin: what clients send is dropped. */
        if (n < 0 && errno != EAGAIN && errno != EINTR) attach.pending_offset = attach.pending_used;
    }
    if (attach.pending_offset == attach.pending_used) attach.pending_used = attach.pending_offset = 0;
}

void iotkube_attach_after_poll(const struct pollfd *fds) {
    int first = attach.polled_listener >= 0 ? 1 : 0;
    first += attach.polled_stdin >= 0 ? 1 : 0;
    for (int i = 0; i < attach.polled_clients; i++) {
        struct client *client = &attach.clients[i];
        short revents = fds[first + i].revents;
        if (client->dead || !revents) continue;
        if (revents & POLLIN) {
            ssize_t n = recv(client->fd, client->buffer + client->used, sizeof client->buffer - client->used, MSG_DONTWAIT);
            if (n > 0) client->used += (size_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) kill_client(client);
        } else if (revents & (POLLHUP | POLLERR | POLLNVAL)) {
            kill_client(client);
        }
    }
    /* Stdin as far as the container takes it, then the next frames, client after client, until
     * the container stops taking stdin (POLLOUT brings us back) or nothing is left to do (each
     * pass consumes buffered frames, so this ends). */
    for (;;) {
        write_stdin();
        if (attach.pending_used > attach.pending_offset) break;
        int before = 0;
        for (int i = 0; i < attach.count; i++) before += (int)attach.clients[i].used;
        for (int i = 0; i < attach.count && attach.pending_used == attach.pending_offset; i++) process(&attach.clients[i]);
        int after = 0;
        for (int i = 0; i < attach.count; i++) after += (int)attach.clients[i].used;
        if (after == before && attach.pending_used == attach.pending_offset) break;
    }
    if (attach.stdin_fd >= 0 && attach.close_stdin && attach.pending_used == 0) {
        close(attach.stdin_fd);
        attach.stdin_fd = -1;
    }
    sweep();
    /* After the sweep: a client that left this round frees its slot for the one waiting. */
    if (attach.polled_listener >= 0 && fds[attach.polled_listener].revents) accept_client();
}

void iotkube_attach_finish(void) {
    for (int i = 0; i < attach.count; i++) {
        if (!attach.clients[i].dead) send_frame(&attach.clients[i], 'x', NULL, 0);
        close(attach.clients[i].fd);
    }
    attach.count = 0;
    if (attach.listener >= 0) {
        close(attach.listener);
        unlink(attach.path);
        attach.listener = -1;
    }
    if (attach.stdin_fd >= 0) close(attach.stdin_fd);
    if (attach.terminal >= 0) close(attach.terminal);
    if (attach.spare >= 0) close(attach.spare);
    attach.stdin_fd = attach.terminal = attach.spare = -1;
}
