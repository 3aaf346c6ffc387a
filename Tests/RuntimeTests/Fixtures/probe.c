/* What a container may not do: each attempt prints name=OK or name=<errno name>. Built
 * statically by the runtime tests and run inside containers. Other modes exercise limits:
 *   probe alloc MiB     touch MiB of memory, printing allocated=N every MiB (memory.max)
 *   probe spin SECONDS  busy-loop; prints cpu_ms and wall_ms (cpu.max)
 *   probe forks N       try N forks (children wait); prints forked, failed and the errno (pids.max)
 *   probe devices       mknod and open a block device node (the device controller)
 *   probe assigned      open an assigned node of a driverless major (240:0) and mknod its neighbour */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <unistd.h>

static void report(const char *name, long rc) {
    printf("%s=%s\n", name, rc < 0 ? strerrorname_np(errno) : "OK");
}

static long milliseconds(struct timespec t) { return t.tv_sec * 1000L + t.tv_nsec / 1000000L; }

static int limits(int argc, char **argv) {
    if (strcmp(argv[1], "alloc") == 0 && argc > 2) {
        long mebibytes = atol(argv[2]);
        for (long i = 1; i <= mebibytes; i++) {
            char *chunk = malloc(1 << 20);
            if (!chunk) { printf("malloc failed at %ld\n", i); return 1; }
            memset(chunk, 1, 1 << 20);
            printf("allocated=%ld\n", i);
            fflush(stdout);
        }
        return 0;
    }
    if (strcmp(argv[1], "spin") == 0 && argc > 2) {
        struct timespec start, now, cpu;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do { clock_gettime(CLOCK_MONOTONIC, &now); } while (milliseconds(now) - milliseconds(start) < atol(argv[2]) * 1000L);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
        printf("cpu_ms=%ld wall_ms=%ld\n", milliseconds(cpu), milliseconds(now) - milliseconds(start));
        return 0;
    }
    if (strcmp(argv[1], "forks") == 0 && argc > 2) {
        int wanted = atoi(argv[2]), forked = 0, failed = 0, error = 0;
        pid_t children[4096];
        for (int i = 0; i < wanted && i < 4096; i++) {
            pid_t child = fork();
            if (child == 0) { pause(); _exit(0); }
            if (child < 0) { failed++; error = errno; continue; }
            children[forked++] = child;
        }
        for (int i = 0; i < forked; i++) { kill(children[i], SIGKILL); waitpid(children[i], NULL, 0); }
        errno = error;
        printf("forked=%d failed=%d error=%s\n", forked, failed, error ? strerrorname_np(error) : "none");
        return 0;
    }
    if (strcmp(argv[1], "devices") == 0) {
        report("mknod_block", mknod("/dev/probe-block", S_IFBLK | 0600, makedev(8, 0)));
        report("open_block", open("/dev/probe-block", O_RDONLY));
        report("open_null", open("/dev/null", O_WRONLY));
        report("write_zero", open("/dev/zero", O_WRONLY));
        return 0;
    }
    if (strcmp(argv[1], "assigned") == 0) {
        /* Allowed by the device controller, 240:0 reaches the (absent) driver: ENXIO. */
        report("open_assigned", open("/dev/radio0", O_RDONLY));
        report("mknod_assigned", mknod("/dev/radio0-copy", S_IFCHR | 0600, makedev(240, 0)));
        report("mknod_other", mknod("/dev/radio1", S_IFCHR | 0600, makedev(240, 1)));
        return 0;
    }
    fprintf(stderr, "probe: unknown mode %s\n", argv[1]);
    return 2;
}

int main(int argc, char **argv) {
    if (argc > 1) return limits(argc, argv);
    report("mount", mount("tmpfs", "/tmp", "tmpfs", 0, NULL));
    report("unshare", unshare(CLONE_NEWNS));
    report("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    report("rawsocket", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
    report("init_module", syscall(SYS_init_module, "", 0, ""));
    report("procsys", open("/proc/sys/kernel/hostname", O_WRONLY));
    report("sethostname", sethostname("evil", 4));
    report("mknod_block", syscall(SYS_mknodat, AT_FDCWD, "/dev/iotkube-sda", 060600, (8 << 8) | 0));
    report("setns", setns(open("/proc/1/ns/net", O_RDONLY), 0));
    return 0;
}
