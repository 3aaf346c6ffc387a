/// Linux capability names and numbers (linux/capability.h), and the default set containers get.
public enum Capabilities {
    public static let numbers: [String: Int] = [
        "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
        "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
        "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
        "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
        "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
        "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
        "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
        "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38,
        "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
    ]

    /// The capabilities containers get by default: containerd's set without CAP_NET_RAW (raw
    /// sockets are refused unless a pod adds it, as Kubernetes' restricted profile wants) and
    /// without CAP_MKNOD (hardly any container needs it; the device rules would refuse a host
    /// disk node anyway, and a pod that needs it adds it).
    public static let defaultSet = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// A bit mask of `names`; an unknown name is an error naming the field.
    public static func mask(_ names: [String]?, field: String) throws(RuntimeError) -> UInt64 {
        var mask: UInt64 = 0
        for name in names ?? [] {
            let normalised = name.hasPrefix("CAP_") ? name : "CAP_" + name
            guard let number = numbers[normalised.uppercased()] else { throw RuntimeError("\(field): unknown capability \"\(name)\"") }
            mask |= 1 << UInt64(number)
        }
        return mask
    }
}
