#include "cseccomp.h"
#include <errno.h>
#include <seccomp.h>
#include <string.h>

int iotkube_seccomp_compile(uint32_t default_action, const char *const *architectures, int architecture_count,
                            const char *const *syscall_names, const uint32_t *actions, const int *arg_counts, int rule_count,
                            const uint32_t *arg_index, const uint32_t *arg_op, const uint64_t *arg_value, const uint64_t *arg_value_two,
                            int no_new_privs_bit, int log_flag, int fd, int *skipped, const char **error) {
    *skipped = 0;
    scmp_filter_ctx ctx = seccomp_init(default_action);
    if (!ctx) { *error = "seccomp_init failed (bad default action?)"; return -1; }
    /* The process sets no_new_privs itself; the filter must not force it. */
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, (uint32_t)no_new_privs_bit);
    if (log_flag) seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1);
    for (int i = 0; i < architecture_count; i++) {
        uint32_t arch = seccomp_arch_resolve_name(architectures[i]);
        if (!arch) { *error = "unknown seccomp architecture"; seccomp_release(ctx); return -1; }
        int rc = seccomp_arch_add(ctx, arch);
        if (rc != 0 && rc != -EEXIST) { *error = "seccomp_arch_add failed"; seccomp_release(ctx); return -1; }
    }
    int offset = 0;
    for (int i = 0; i < rule_count; i++) {
        int count = arg_counts[i];
        int number = seccomp_syscall_resolve_name(syscall_names[i]);
        if (number == __NR_SCMP_ERROR) { (*skipped)++; offset += count; continue; }
        if (actions[i] == default_action) { offset += count; continue; }
        struct scmp_arg_cmp conditions[6];
        if (count > 6) { *error = "more than 6 argument conditions on one syscall"; seccomp_release(ctx); return -1; }
        for (int c = 0; c < count; c++) {
            conditions[c].arg = arg_index[offset + c];
            conditions[c].op = (enum scmp_compare)arg_op[offset + c];
            conditions[c].datum_a = arg_value[offset + c];
            conditions[c].datum_b = arg_value_two[offset + c];
        }
        offset += count;
        int rc = seccomp_rule_add_array(ctx, actions[i], number, (unsigned)count, conditions);
        if (rc == -EOPNOTSUPP || rc == -EDOM) {
            /* Not expressible on one of the architectures (e.g. a multiplexed socketcall): skip. */
            (*skipped)++;
            continue;
        }
        if (rc != 0) { *error = "seccomp_rule_add failed (conflicting rules for one syscall?)"; seccomp_release(ctx); return -1; }
    }
    int rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    if (rc != 0) { *error = "seccomp_export_bpf failed"; return -1; }
    return 0;
}
