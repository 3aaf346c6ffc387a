/* What a container may not do: each attempt prints name=OK or name=<errno name>. Built
 * statically by the runtime tests and run inside containers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <unistd.h>

static void report(const char *name, long rc) {
    printf("%s=%s\n", name, rc < 0 ? strerrorname_np(errno) : "OK");
}

int main(void) {
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
