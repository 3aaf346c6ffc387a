#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The plan file: NUL-terminated tokens. Each record starts with its tag; the tag fixes how many
 * tokens follow (lists carry a count first). Written by the Swift side (LaunchPlan). */

struct reader {
    char *cursor, *end;
};

static const char *next(struct reader *r) {
    if (r->cursor >= r->end) return NULL;
    char *token = r->cursor;
    char *nul = memchr(token, 0, (size_t)(r->end - token));
    if (!nul) return NULL;
    r->cursor = nul + 1;
    return token;
}

static int number(struct reader *r, unsigned long long *value) {
    const char *token = next(r);
    if (!token || !*token) return -1;
    char *end;
    errno = 0;
    *value = strtoull(token, &end, 10);
    return (errno || *end) ? -1 : 0;
}

static char plan_error[256];
#define NEED(expr) do { if (!(expr)) { snprintf(plan_error, sizeof plan_error, "malformed plan record \"%s\" at byte %ld", tag, (long)(r.cursor - buffer)); *error = plan_error; return -1; } } while (0)
#define NUM(var) do { unsigned long long v_; NEED(number(&r, &v_) == 0); (var) = v_; } while (0)
#define STR(var) do { const char *t_ = next(&r); NEED(t_ != NULL); (var) = t_; } while (0)
#define ROOM(count, limit) NEED((count) < (limit))

int iotkube_plan_load(const char *path, struct plan *plan, char **error) {
    memset(plan, 0, sizeof *plan);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { *error = "cannot open the plan"; return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > (16 << 20)) { close(fd); *error = "bad plan size"; return -1; }
    char *buffer = malloc((size_t)st.st_size + 1);
    if (!buffer) { close(fd); *error = "out of memory"; return -1; }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buffer + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { close(fd); *error = "cannot read the plan"; return -1; }
        got += (size_t)n;
    }
    close(fd);
    buffer[got] = 0;
    struct reader r = { buffer, buffer + got };
    const char *tag;
    while ((tag = next(&r)) != NULL) {
        if (!strcmp(tag, "rootfs")) {
            STR(plan->rootfs); NUM(plan->rootfs_readonly); NUM(plan->rootfs_propagation);
        } else if (!strcmp(tag, "ns")) {
            ROOM(plan->namespace_count, 16);
            struct plan_namespace *ns = &plan->namespaces[plan->namespace_count++];
            NUM(ns->flag); STR(ns->path);
        } else if (!strcmp(tag, "mount")) {
            ROOM(plan->mount_count, MAX_ITEMS);
            struct plan_mount *m = &plan->mounts[plan->mount_count++];
            STR(m->source); STR(m->destination); STR(m->fstype); NUM(m->flags); NUM(m->propagation); STR(m->data);
            NUM(m->recursive_readonly);
        } else if (!strcmp(tag, "device")) {
            ROOM(plan->device_count, MAX_ITEMS);
            struct plan_device *d = &plan->devices[plan->device_count++];
            const char *type;
            STR(d->path); STR(type); d->type = type[0];
            NUM(d->major); NUM(d->minor); NUM(d->mode); NUM(d->uid); NUM(d->gid);
        } else if (!strcmp(tag, "symlink")) {
            ROOM(plan->symlink_count, 32);
            STR(plan->symlink_targets[plan->symlink_count]); STR(plan->symlink_paths[plan->symlink_count]);
            plan->symlink_count++;
        } else if (!strcmp(tag, "masked")) {
            ROOM(plan->masked_count, MAX_ITEMS); STR(plan->masked[plan->masked_count]); plan->masked_count++;
        } else if (!strcmp(tag, "readonly")) {
            ROOM(plan->readonly_count, MAX_ITEMS); STR(plan->readonly[plan->readonly_count]); plan->readonly_count++;
        } else if (!strcmp(tag, "sysctl")) {
            ROOM(plan->sysctl_count, MAX_ITEMS);
            STR(plan->sysctl_keys[plan->sysctl_count]); STR(plan->sysctl_values[plan->sysctl_count]);
            plan->sysctl_count++;
        } else if (!strcmp(tag, "hostname")) {
            STR(plan->hostname);
        } else if (!strcmp(tag, "domainname")) {
            STR(plan->domainname);
        } else if (!strcmp(tag, "rlimit")) {
            ROOM(plan->rlimit_count, 32);
            NUM(plan->rlimit_resources[plan->rlimit_count]); NUM(plan->rlimit_soft[plan->rlimit_count]);
            NUM(plan->rlimit_hard[plan->rlimit_count]);
            plan->rlimit_count++;
        } else if (!strcmp(tag, "user")) {
            unsigned long long count;
            NUM(plan->uid); NUM(plan->gid); NUM(plan->has_umask); NUM(plan->umask_value); NUM(count);
            NEED(count <= 64);
            for (unsigned long long i = 0; i < count; i++) NUM(plan->groups[i]);
            plan->group_count = (int)count;
        } else if (!strcmp(tag, "cwd")) {
            STR(plan->cwd);
        } else if (!strcmp(tag, "env")) {
            ROOM(plan->env_count, MAX_ITEMS); STR(plan->env[plan->env_count]); plan->env_count++;
        } else if (!strcmp(tag, "arg")) {
            ROOM(plan->arg_count, MAX_ITEMS); STR(plan->args[plan->arg_count]); plan->arg_count++;
        } else if (!strcmp(tag, "caps")) {
            plan->has_caps = 1;
            for (int i = 0; i < 5; i++) NUM(plan->caps[i]);
        } else if (!strcmp(tag, "nnp")) {
            NUM(plan->no_new_privileges);
        } else if (!strcmp(tag, "seccomp")) {
            STR(plan->seccomp_path);
        } else if (!strcmp(tag, "oomscoreadj")) {
            long long value; const char *token; STR(token);
            value = strtoll(token, NULL, 10);
            plan->oom_score_adj = (int)value; plan->has_oom_score_adj = 1;
        } else if (!strcmp(tag, "hook")) {
            ROOM(plan->hook_count, 16);
            struct plan_hook *h = &plan->hooks[plan->hook_count++];
            const char *kind; unsigned long long count;
            STR(kind); NEED(kind[0] && strchr("prcs", kind[0])); h->kind = kind[0]; STR(h->path); NUM(h->timeout);
            NUM(count); NEED(count <= 32);
            for (unsigned long long i = 0; i < count; i++) STR(h->args[i]);
            h->arg_count = (int)count; h->args[count] = NULL;
            NUM(count); NEED(count <= 64);
            for (unsigned long long i = 0; i < count; i++) STR(h->env[i]);
            h->env_count = (int)count; h->env[count] = NULL;
        } else if (!strcmp(tag, "external")) {
            unsigned long long count;
            NUM(count); NEED(count >= 1 && count <= 64);
            for (unsigned long long i = 0; i < count; i++) STR(plan->external_argv[i]);
            plan->external_argc = (int)count; plan->external_argv[count] = NULL;
            STR(plan->external_pid_file); STR(plan->external_log_file);
        } else if (!strcmp(tag, "hookstate")) {
            STR(plan->hook_state_prefix); STR(plan->hook_state_suffix);
        } else if (!strcmp(tag, "cgroupprocs")) {
            ROOM(plan->cgroup_procs_count, 8); STR(plan->cgroup_procs[plan->cgroup_procs_count]); plan->cgroup_procs_count++;
        } else if (!strcmp(tag, "systemdscope")) {
            STR(plan->systemd_scope); STR(plan->systemd_cgroup);
        } else if (!strcmp(tag, "unitproperty")) {
            ROOM(plan->unit_property_count, 24);
            struct iotkube_unit_property *u = &plan->unit_properties[plan->unit_property_count++];
            const char *type;
            STR(u->name); STR(type); NEED(type[0] && strchr("sbtu", type[0]) && !type[1]); u->type = type[0];
            NUM(u->optional);
            if (u->type == 's') { STR(u->text); } else { NUM(u->number); }
        } else if (!strcmp(tag, "memoryevents")) {
            STR(plan->memory_events);
        } else if (!strcmp(tag, "execfifo")) {
            STR(plan->exec_fifo);
        } else if (!strcmp(tag, "exitfile")) {
            STR(plan->exit_file);
        } else if (!strcmp(tag, "pidfile")) {
            STR(plan->pid_file);
        } else if (!strcmp(tag, "logfile")) {
            STR(plan->log_file);
        } else if (!strcmp(tag, "journal")) {
            STR(plan->journal_identifier);
        } else if (!strcmp(tag, "statedir")) {
            STR(plan->state_directory);
        } else if (!strcmp(tag, "console")) {
            STR(plan->console_socket);
        } else if (!strcmp(tag, "stdio")) {
            NUM(plan->stdio_inherit);
        } else if (!strcmp(tag, "stdin")) {
            NUM(plan->stdin_mode);
        } else if (!strcmp(tag, "attach")) {
            NUM(plan->attach);
        } else if (!strcmp(tag, "monitorterminal")) {
            NUM(plan->terminal_to_monitor);
        } else if (!strcmp(tag, "joinpid")) {
            NUM(plan->join_pid);
        } else {
            snprintf(plan_error, sizeof plan_error, "unknown plan record \"%s\"", tag);
            *error = plan_error;
            return -1;
        }
    }
    plan->env[plan->env_count] = NULL;
    plan->args[plan->arg_count] = NULL;
    if (plan->arg_count == 0 && plan->external_argc == 0) { *error = "the plan has no process arguments"; return -1; }
    return 0;
}
