/// OCI mount options → mount(2) flags, propagation and file-system data (what runc and crun do).
struct MountOptions {
    static let rdonly: UInt = 1, nosuid: UInt = 2, nodev: UInt = 4, noexec: UInt = 8, synchronous: UInt = 16
    static let remount: UInt = 32, mandlock: UInt = 64, dirsync: UInt = 128, noatime: UInt = 1024, nodiratime: UInt = 2048
    static let bind: UInt = 4096, recursive: UInt = 16384, unbindable: UInt = 1 << 17, privateFlag: UInt = 1 << 18
    static let slave: UInt = 1 << 19, shared: UInt = 1 << 20, relatime: UInt = 1 << 21, strictatime: UInt = 1 << 24

    var flags: UInt = 0
    var propagation: UInt = 0
    var data: [String] = []
    var recursiveReadonly = false

    init(_ options: [String], type: String?) {
        if type == "bind" { flags |= Self.bind }
        for option in options {
            switch option {
            case "ro": flags |= Self.rdonly
            case "rw": flags &= ~Self.rdonly
            case "nosuid": flags |= Self.nosuid
            case "suid": flags &= ~Self.nosuid
            case "nodev": flags |= Self.nodev
            case "dev": flags &= ~Self.nodev
            case "noexec": flags |= Self.noexec
            case "exec": flags &= ~Self.noexec
            case "sync": flags |= Self.synchronous
            case "async": flags &= ~Self.synchronous
            case "dirsync": flags |= Self.dirsync
            case "remount": flags |= Self.remount
            case "mand": flags |= Self.mandlock
            case "nomand": flags &= ~Self.mandlock
            case "noatime": flags |= Self.noatime
            case "atime": flags &= ~Self.noatime
            case "nodiratime": flags |= Self.nodiratime
            case "diratime": flags &= ~Self.nodiratime
            case "relatime": flags |= Self.relatime
            case "norelatime": flags &= ~Self.relatime
            case "strictatime": flags |= Self.strictatime
            case "nostrictatime": flags &= ~Self.strictatime
            case "bind": flags |= Self.bind
            case "rbind": flags |= Self.bind | Self.recursive
            case "rro": flags |= Self.rdonly; recursiveReadonly = true
            case "private": propagation = Self.privateFlag
            case "rprivate": propagation = Self.privateFlag | Self.recursive
            case "shared": propagation = Self.shared
            case "rshared": propagation = Self.shared | Self.recursive
            case "slave": propagation = Self.slave
            case "rslave": propagation = Self.slave | Self.recursive
            case "unbindable": propagation = Self.unbindable
            case "runbindable": propagation = Self.unbindable | Self.recursive
            case "tmpcopyup", "idmap", "ridmap", "copy-symlink": break   // runtime-specific extras: ignored
            default: data.append(option)
            }
        }
    }

    /// `rootfsPropagation` as flags.
    static func propagation(_ name: String?) throws(RuntimeError) -> UInt {
        guard let name, !name.isEmpty else { return 0 }
        let parsed = MountOptions([name], type: nil)
        guard parsed.propagation != 0 else { throw RuntimeError("linux.rootfsPropagation: unknown value \"\(name)\"") }
        return parsed.propagation
    }
}
