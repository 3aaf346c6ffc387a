import OCI

/// The bundle configuration `runtime spec` writes and the pod code starts from: a process with
/// the default capabilities and no_new_privs, a read-only root, its own namespaces, the
/// standard mounts, masked and read-only /proc paths, and the RuntimeDefault seccomp profile.
public enum DefaultSpec {
    public static let maskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    public static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

    public static func make(args: [String] = ["sh"], hostname: String = "iotkube") -> RuntimeSpec {
        var spec = RuntimeSpec(ociVersion: "1.2.0")
        var process = RuntimeSpec.Process(args: args)
        process.env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"]
        var capabilities = RuntimeSpec.Capabilities()
        capabilities.bounding = Capabilities.defaultSet
        capabilities.effective = Capabilities.defaultSet
        capabilities.permitted = Capabilities.defaultSet
        process.capabilities = capabilities
        process.rlimits = [RuntimeSpec.Rlimit(type: "RLIMIT_NOFILE", hard: 1024, soft: 1024)]
        process.noNewPrivileges = true
        spec.process = process
        spec.root = RuntimeSpec.Root(path: "rootfs", readonly: true)
        spec.hostname = hostname
        spec.mounts = [
            .init(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
            .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            .init(destination: "/dev/pts", type: "devpts", source: "devpts",
                  options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            .init(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            .init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
            .init(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
            // The container's own cgroup (its cgroup namespace's root), read-only, as containerd's default spec.
            .init(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ]
        var linux = RuntimeSpec.Linux()
        linux.namespaces = ["pid", "network", "ipc", "uts", "mount", "cgroup"].map { RuntimeSpec.Namespace(type: $0) }
        linux.maskedPaths = maskedPaths
        linux.readonlyPaths = readonlyPaths
        linux.seccomp = RuntimeDefaultSeccomp.profile()
        spec.linux = linux
        return spec
    }
}
