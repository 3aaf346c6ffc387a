#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import OCI
import SystemSupport

/// The platform of the running machine, as image indexes name it: `uname -m` for the
/// architecture and, on 32-bit arm, the CPU architecture level from `/proc/cpuinfo` for the variant.
public enum HostPlatform {
    public static func current(cpuinfoPath: String = "/proc/cpuinfo") -> Platform {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return platform(machine: machine, cpuinfo: readSmallFile(cpuinfoPath) ?? "")
    }

    /// The platform for a `uname -m` value and the text of `/proc/cpuinfo` (testable without arm).
    public static func platform(machine: String, cpuinfo: String) -> Platform {
        switch machine {
        case "x86_64": return Platform(architecture: "amd64")
        case "aarch64", "arm64": return Platform(architecture: "arm64", variant: "v8")
        case "i386", "i486", "i586", "i686": return Platform(architecture: "386")
        case "riscv64": return Platform(architecture: "riscv64")
        case "ppc64le": return Platform(architecture: "ppc64le")
        case "s390x": return Platform(architecture: "s390x")
        default:
            if machine.hasPrefix("arm") {
                // armv6l, armv7l, armv8l (a 64-bit core in 32-bit mode runs v7 code); cpuinfo wins.
                var level = machine.dropFirst(4).prefix(while: { $0.isNumber })
                for line in cpuinfo.split(separator: "\n") where line.hasPrefix("CPU architecture") {
                    if let colon = line.firstIndex(of: ":") {
                        let value = line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })
                        let digits = value.prefix(while: { $0.isNumber })
                        if !digits.isEmpty { level = digits }
                    }
                    break
                }
                let number = min(Int(level) ?? 7, 7)
                return Platform(architecture: "arm", variant: "v\(max(number, 5))")
            }
            return Platform(architecture: machine)
        }
    }

    static func readSmallFile(_ path: String) -> String? { FileTree.readText(path) }
}
