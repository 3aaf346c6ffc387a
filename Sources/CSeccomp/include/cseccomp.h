#ifndef IOTKUBE_CSECCOMP_H
#define IOTKUBE_CSECCOMP_H
#include <stdint.h>

/// Compiles a seccomp filter with libseccomp and writes the raw BPF program (struct sock_filter
/// array) to `fd`. Rules are flat arrays: for rule i, `syscall_names[i]`, `actions[i]`, and
/// `arg_counts[i]` argument conditions taken in order from the arg_* arrays. Architectures are
/// libseccomp names ("x86_64", "aarch64", …). Returns 0, or -1 with `error` (static) set;
/// syscalls unknown on every architecture are skipped and counted in `*skipped`.
int iotkube_seccomp_compile(uint32_t default_action, const char *const *architectures, int architecture_count,
                            const char *const *syscall_names, const uint32_t *actions, const int *arg_counts, int rule_count,
                            const uint32_t *arg_index, const uint32_t *arg_op, const uint64_t *arg_value, const uint64_t *arg_value_two,
                            int no_new_privs_bit, int log_flag, int fd, int *skipped, const char **error);

#endif
