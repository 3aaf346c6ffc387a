#include "internal.h"
#include "dbus_client.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* systemd's manager over D-Bus (the kubelet's systemd cgroup driver, in C so the monitor can use
 * it too): StartTransientUnit, SetUnitProperties and StopUnit on the system bus, or on systemd's
 * own socket where a board runs no bus daemon. */

static const struct dbus_target manager = { "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "org.freedesktop.systemd1" };

/* One call to the manager; 0 done, 1 refused with `refusal` (another result from the caller's
 * view), -1 failed (the error filled in). */
static int manager_call(const char *member, const char *signature, const struct builder *body, const char *unit,
                        const char *tolerated, long long deadline, char *error, size_t error_size, char *unknown_property, size_t unknown_size) {
    struct bus bus = { .fd = -1, .error = error, .error_size = error_size, .deadline = deadline };
    if (iotkube_dbus_open(&bus, 0) < 0) return -1;
    int serial = iotkube_dbus_call(&bus, &manager, member, signature, body);
    int result = -1;
    if (serial >= 0) {
        char name[256], text[512];
        result = iotkube_dbus_reply(&bus, (uint32_t)serial, name, sizeof name, text, sizeof text, NULL);
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
    iotkube_dbus_close(&bus);
    return result;
}

/* StartTransientUnit or SetUnitProperties; properties marked optional that this systemd does
 * not know (it names them one at a time) are left out and the call made again. */
static int set_properties_call(int start, const char *unit, const struct iotkube_unit_property *properties, int count,
                               char *error, size_t error_size) {
    if (count < 0 || count > 64) { snprintf(error, error_size, "systemd: %d properties for %s", count, unit); return -1; }
    int dropped[64] = { 0 };
    long long deadline = iotkube_dbus_now_ms() + DBUS_CALL_TIMEOUT_MS;   /* for every attempt together */
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
    int result = manager_call("StopUnit", "ss", body, unit, "org.freedesktop.systemd1.NoSuchUnit", iotkube_dbus_now_ms() + DBUS_CALL_TIMEOUT_MS, error, error_size, NULL, 0);
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

int iotkube_systemd_kill_unit(const char *unit, int signal_number, char *error, size_t error_size) {
    struct builder *body = calloc(1, sizeof *body);
    if (!body) { snprintf(error, error_size, "systemd: out of memory"); return -1; }
    put_string(body, unit);
    put_string(body, "all");
    put_u32(body, (uint32_t)signal_number);
    int result = manager_call("KillUnit", "ssi", body, unit, NULL, iotkube_dbus_now_ms() + DBUS_CALL_TIMEOUT_MS, error, error_size, NULL, 0);
    free(body);
    return result < 0 ? -1 : 0;
}
