#include "internal.h"
#include "dbus_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* systemd-logind on the system bus, for the graceful node shutdown (the kubelet's
 * GracefulNodeShutdown): a delay inhibitor lock for shutdown, logind's longest delay, and its
 * PrepareForShutdown signal. The signal counts only from logind's own connection: any client of
 * the bus may send a signal to us directly, and a forged one would stop every pod. */

struct iotkube_logind {
    struct bus bus;
};

static const struct dbus_target login1 = { "/org/freedesktop/login1", "org.freedesktop.login1.Manager", "org.freedesktop.login1" };
static const struct dbus_target properties = { "/org/freedesktop/login1", "org.freedesktop.DBus.Properties", "org.freedesktop.login1" };
static const struct dbus_target bus_daemon = { "/org/freedesktop/DBus", "org.freedesktop.DBus", "org.freedesktop.DBus" };

/* One call and its reply: 0 with the body in `out`, -1 with the error set (a refusal named). */
static int request(struct iotkube_logind *l, const struct dbus_target *target, const char *member, const char *signature,
                   const struct builder *body, struct dbus_reply *out) {
    l->bus.deadline = iotkube_dbus_now_ms() + DBUS_CALL_TIMEOUT_MS;
    int serial = iotkube_dbus_call(&l->bus, target, member, signature, body);
    if (serial < 0) return -1;
    char name[256], text[512];
    int result = iotkube_dbus_reply(&l->bus, (uint32_t)serial, name, sizeof name, text, sizeof text, out);
    if (result == 1) {
        snprintf(l->bus.error, l->bus.error_size, "logind refused %s: %s (%s)", member, text[0] ? text : name, name);
        return -1;
    }
    return result;
}

/* A reply body that is one string ("s"), copied into `value`. */
static int reply_string(struct iotkube_logind *l, const struct dbus_reply *reply, char *value, size_t size) {
    uint32_t length;
    if (strcmp(reply->signature, "s") || reply->body_length < 5) return iotkube_dbus_fail(&l->bus, "D-Bus: an unexpected reply%s", "");
    memcpy(&length, reply->body, 4);
    if (length > reply->body_length - 5 || length >= size || reply->body[4 + length] != 0) return iotkube_dbus_fail(&l->bus, "D-Bus: an unexpected reply%s", "");
    memcpy(value, reply->body + 4, length + 1);
    return 0;
}

void iotkube_logind_close(struct iotkube_logind *l) {
    if (!l) return;
    iotkube_dbus_close(&l->bus);
    free(l);
}

/* Reads one property of logind's manager into `answer` (a variant); -1 with the error set. */
static int get_property(struct iotkube_logind *l, const char *name, unsigned char *answer, size_t size, size_t *length) {
    struct builder *body = calloc(1, sizeof *body);
    struct dbus_reply reply = { answer, size, 0, "" };
    if (!body) return iotkube_dbus_fail(&l->bus, "D-Bus: out of memory%s", "");
    put_string(body, "org.freedesktop.login1.Manager");
    put_string(body, name);
    int result = request(l, &properties, "Get", "ss", body, &reply);
    free(body);
    if (result < 0) return -1;
    if (strcmp(reply.signature, "v")) return iotkube_dbus_fail(&l->bus, "logind: %s is not a variant", name);
    *length = reply.body_length;
    return 0;
}

long long iotkube_logind_inhibit_delay_max(struct iotkube_logind *l, char *error, size_t error_size) {
    l->bus.error = error;
    l->bus.error_size = error_size;
    unsigned char answer[64];
    size_t length;
    if (get_property(l, "InhibitDelayMaxUSec", answer, sizeof answer, &length) < 0) return -1;
    /* A variant holding a uint64: signature "t", then the value 8-aligned. */
    if (length != 16 || answer[0] != 1 || answer[1] != 't' || answer[2] != 0)
        return iotkube_dbus_fail(&l->bus, "logind: InhibitDelayMaxUSec is not a uint64%s", "");
    uint64_t value;
    memcpy(&value, answer + 8, 8);
    return value > (uint64_t)INT64_MAX ? INT64_MAX : (long long)value;
}

int iotkube_logind_preparing_for_shutdown(struct iotkube_logind *l, char *error, size_t error_size) {
    l->bus.error = error;
    l->bus.error_size = error_size;
    unsigned char answer[64];
    size_t length;
    if (get_property(l, "PreparingForShutdown", answer, sizeof answer, &length) < 0) return -1;
    /* A variant holding a boolean: signature "b", then the value 4-aligned. */
    uint32_t value;
    if (length != 8 || answer[0] != 1 || answer[1] != 'b' || answer[2] != 0) return iotkube_dbus_fail(&l->bus, "logind: PreparingForShutdown is not a boolean%s", "");
    memcpy(&value, answer + 4, 4);
    return value != 0;
}

struct iotkube_logind *iotkube_logind_open(char *error, size_t error_size) {
    struct iotkube_logind *l = calloc(1, sizeof *l);
    if (!l) { snprintf(error, error_size, "logind: out of memory"); return NULL; }
    l->bus = (struct bus){ .fd = -1, .error = error, .error_size = error_size, .deadline = iotkube_dbus_now_ms() + DBUS_CALL_TIMEOUT_MS };
    if (iotkube_dbus_open(&l->bus, 1) < 0) { free(l); return NULL; }
    /* A property read starts logind where the bus activates it; then its connection's name. */
    if (iotkube_logind_inhibit_delay_max(l, error, error_size) < 0) { iotkube_logind_close(l); return NULL; }
    struct builder *body = calloc(1, sizeof *body);
    unsigned char answer[512];
    struct dbus_reply reply = { answer, sizeof answer, 0, "" };
    if (!body) { snprintf(error, error_size, "logind: out of memory"); iotkube_logind_close(l); return NULL; }
    /* Watched from here on (a PrepareForShutdown before logind's name is known counts for nothing;
     * a change of its owner makes the first look fail and the caller connect again). Then the
     * matches, before GetNameOwner: a restart of logind after it is seen. */
    l->bus.watch_interface = "org.freedesktop.login1.Manager";
    l->bus.watch_member = "PrepareForShutdown";
    l->bus.watch_owner_of = "org.freedesktop.login1";
    put_string(body, "type='signal',sender='org.freedesktop.login1',path='/org/freedesktop/login1',"
                     "interface='org.freedesktop.login1.Manager',member='PrepareForShutdown'");
    int failed = request(l, &bus_daemon, "AddMatch", "s", body, NULL) < 0;
    if (!failed) {
        /* logind restarting changes its connection: the signal would come from a new one. */
        memset(body, 0, sizeof *body);
        put_string(body, "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                         "member='NameOwnerChanged',arg0='org.freedesktop.login1'");
        failed = request(l, &bus_daemon, "AddMatch", "s", body, NULL) < 0;
    }
    if (!failed) {
        memset(body, 0, sizeof *body);
        put_string(body, "org.freedesktop.login1");
        failed = request(l, &bus_daemon, "GetNameOwner", "s", body, &reply) < 0
            || reply_string(l, &reply, l->bus.watch_sender, sizeof l->bus.watch_sender) < 0;
    }
    free(body);
    if (failed) { iotkube_logind_close(l); return NULL; }
    return l;
}

int iotkube_logind_inhibit(struct iotkube_logind *l, const char *who, const char *why, char *error, size_t error_size) {
    l->bus.error = error;
    l->bus.error_size = error_size;
    struct builder *body = calloc(1, sizeof *body);
    unsigned char answer[16];
    struct dbus_reply reply = { answer, sizeof answer, 0, "" };
    if (!body) return iotkube_dbus_fail(&l->bus, "D-Bus: out of memory%s", "");
    put_string(body, "shutdown");
    put_string(body, who);
    put_string(body, why);
    put_string(body, "delay");
    int result = request(l, &login1, "Inhibit", "ssss", body, &reply);
    free(body);
    if (result < 0) return -1;
    uint32_t index;
    if (strcmp(reply.signature, "h") || reply.body_length != 4) return iotkube_dbus_fail(&l->bus, "logind: Inhibit answered without a descriptor%s", "");
    memcpy(&index, answer, 4);
    if ((int)index >= l->bus.fd_count || index >= DBUS_MAX_FDS) return iotkube_dbus_fail(&l->bus, "logind: Inhibit's descriptor did not arrive%s", "");
    int lock = l->bus.fds[index];
    l->bus.fds[index] = -1;
    iotkube_dbus_drop_fds(&l->bus);
    return lock;
}

int iotkube_logind_wait(struct iotkube_logind *l, int timeout_ms, char *error, size_t error_size) {
    l->bus.error = error;
    l->bus.error_size = error_size;
    int result = iotkube_dbus_wait_signal(&l->bus, timeout_ms);
    if (result < 0) return -1;
    if (result == 0) return 2;
    if (result == 2) return 3;
    int value = l->bus.signal_value;
    l->bus.signal_value = -1;
    return value;
}
