import OCI

/// The RuntimeDefault seccomp profile: the container-default allowlist (as in containerd and
/// Docker) minus ptrace; everything else fails with EPERM. Namespace creation through clone is
/// refused by argument filter, clone3 answers ENOSYS so libcs fall back to clone.
public enum RuntimeDefaultSeccomp {
    static let allowed: [String] = """
        accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32 chroot \
        clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep \
        clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 \
        epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit \
        exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 \
        fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat \
        fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait \
        futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid \
        getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom \
        getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt \
        get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 \
        inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set \
        io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 \
        lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise \
        map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall \
        mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend \
        mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap \
        name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_getfd pidfd_open \
        pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv \
        preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink \
        readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat \
        renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn \
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr \
        sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval \
        sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield \
        seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg \
        sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setpgid \
        setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit \
        set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl shmdt \
        shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socket socketcall socketpair splice stat \
        stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create \
        timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create \
        timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit \
        umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write \
        writev arch_prctl arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)

    /// The namespace flags clone may not carry (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET).
    static let namespaceFlags: UInt64 = 0x7E02_0000

    /// The architectures a filter covers on this machine (64-bit hosts also run 32-bit code).
    public static var architectures: [String] {
        #if arch(x86_64)
            return ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        #elseif arch(arm64)
            return ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
        #elseif arch(arm)
            return ["SCMP_ARCH_ARM"]
        #else
            return []
        #endif
    }

    public static func profile() -> RuntimeSpec.Seccomp {
        var seccomp = RuntimeSpec.Seccomp(defaultAction: "SCMP_ACT_ERRNO")
        seccomp.defaultErrnoRet = 1
        seccomp.architectures = architectures
        var clone = RuntimeSpec.Seccomp.Syscall(names: ["clone"], action: "SCMP_ACT_ALLOW")
        clone.args = [.init(index: 0, value: namespaceFlags, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ")]
        var clone3 = RuntimeSpec.Seccomp.Syscall(names: ["clone3"], action: "SCMP_ACT_ERRNO")
        clone3.errnoRet = 38   // ENOSYS
        var personality = RuntimeSpec.Seccomp.Syscall(names: ["personality"], action: "SCMP_ACT_ALLOW")
        personality.args = [.init(index: 0, value: 0, valueTwo: nil, op: "SCMP_CMP_EQ")]
        var personalityLinux32 = RuntimeSpec.Seccomp.Syscall(names: ["personality"], action: "SCMP_ACT_ALLOW")
        personalityLinux32.args = [.init(index: 0, value: 8, valueTwo: nil, op: "SCMP_CMP_EQ")]
        var personalityQuery = RuntimeSpec.Seccomp.Syscall(names: ["personality"], action: "SCMP_ACT_ALLOW")
        personalityQuery.args = [.init(index: 0, value: 0xFFFF_FFFF, valueTwo: nil, op: "SCMP_CMP_EQ")]
        seccomp.syscalls = [RuntimeSpec.Seccomp.Syscall(names: allowed, action: "SCMP_ACT_ALLOW"), clone, clone3,
                            personality, personalityLinux32, personalityQuery]
        return seccomp
    }
}
