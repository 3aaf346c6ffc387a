/*
 * The cgroup v2 device controller: v2 has no devices.allow file; access to device nodes is decided
 * by a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup. This file compiles
 * the OCI device rules into such a program and attaches it.
 *
 * Semantics are those of the v1 controller and runc: rules are read in order and the LAST rule that
 * matches a request decides; a request no rule matches is denied. A rule matches when the device
 * type matches ('a' = any), major and minor match (-1 = any), and every requested access bit is in
 * the rule's access. The program therefore checks the rules from last to first and returns the
 * first match's verdict.
 */
#define _GNU_SOURCE
#include "cruntime.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

/* Registers: r1 = context; r2 = requested access bits; r3 = device type; r4 = major; r5 = minor. */
enum { R0 = 0, R1, R2, R3, R4, R5, R6 };

static int rule_length(const struct iotkube_device_rule *rule) {
    int length = 2; /* r0 = verdict; exit */
    if (rule->type == 'b' || rule->type == 'c') length += 1;
    if ((rule->access & 7) != 7) length += 3;
    if (rule->major >= 0) length += 1;
    if (rule->minor >= 0) length += 1;
    return length;
}

int iotkube_device_filter_attach(const char *cgroup_directory, const struct iotkube_device_rule *rules, int count,
                                 char *error, size_t error_size) {
    int capacity = 8;
    for (int i = 0; i < count; i++) capacity += rule_length(&rules[i]);
    struct bpf_insn *program = calloc((size_t)capacity, sizeof *program);
    if (!program) { snprintf(error, error_size, "out of memory"); return -1; }
    int n = 0;
    /* access_type = (access << 16) | type */
    program[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, R2, R1, 0, 0);
    program[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, R3, R2, 0, 0);
    program[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, R3, 0, 0, 0xFFFF);
    program[n++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, R2, 0, 0, 16);
    program[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, R4, R1, 4, 0);
    program[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, R5, R1, 8, 0);
    int unconditional = 0;
    for (int i = count - 1; i >= 0 && !unconditional; i--) {
        const struct iotkube_device_rule *rule = &rules[i];
        /* a rule that matches everything ends the program (the verifier rejects dead code) */
        unconditional = rule_length(rule) == 2;
        int end = n + rule_length(rule); /* the first instruction of the next rule */
#define SKIP (int16_t)(end - n - 1)
        if (rule->type == 'b' || rule->type == 'c') {
            int type = rule->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR;
            program[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, R3, 0, 0, type); program[n].off = SKIP; n++;
        }
        if ((rule->access & 7) != 7) {
            /* requested & ~allowed must be 0 */
            program[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, R6, R2, 0, 0);
            program[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, R6, 0, 0, (int32_t)(~rule->access & 7));
            program[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, R6, 0, 0, 0); program[n].off = SKIP; n++;
        }
        if (rule->major >= 0) { program[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, R4, 0, 0, (int32_t)rule->major); program[n].off = SKIP; n++; }
        if (rule->minor >= 0) { program[n] = INSN(BPF_JMP | BPF_JNE | BPF_K, R5, 0, 0, (int32_t)rule->minor); program[n].off = SKIP; n++; }
#undef SKIP
        program[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, rule->allow ? 1 : 0);
        program[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
    if (!unconditional) {
        program[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, 0);
        program[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }

    static char log[4096];
    log[0] = 0;
    union bpf_attr load;
    memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = (uint64_t)(uintptr_t)program;
    load.insn_cnt = (uint32_t)n;
    load.license = (uint64_t)(uintptr_t)"GPL";
    load.log_buf = (uint64_t)(uintptr_t)log;
    load.log_size = sizeof log;
    load.log_level = 1;
    int program_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    if (program_fd < 0 && errno == ENOSPC) {
        /* the log was too small; load again without it */
        load.log_buf = 0; load.log_size = 0; load.log_level = 0;
        program_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
    }
    int saved = errno;
    free(program);
    if (program_fd < 0) {
        snprintf(error, error_size, "loading the device filter program: %s%s%.200s", strerror(saved), log[0] ? "; verifier: " : "", log);
        return -1;
    }
    int cgroup_fd = open(cgroup_directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) {
        snprintf(error, error_size, "opening %s: %s", cgroup_directory, strerror(errno));
        close(program_fd);
        return -1;
    }
    union bpf_attr attach;
    memset(&attach, 0, sizeof attach);
    attach.target_fd = (uint32_t)cgroup_fd;
    attach.attach_bpf_fd = (uint32_t)program_fd;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    int attached = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach);
    saved = errno;
    close(cgroup_fd);
    close(program_fd); /* the attachment holds the program until the cgroup is removed */
    if (attached < 0) {
        snprintf(error, error_size, "attaching the device filter to %s: %s", cgroup_directory, strerror(saved));
        return -1;
    }
    return 0;
}
