#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CSeccomp
import KubeCoding
import NodeCrypto
import OCI
import SystemSupport

/// Compiles a spec's `linux.seccomp` into a BPF program file with libseccomp; the container's
/// setup loads it as its last step before execve.
public enum SeccompFilter {
    static func action(_ name: String, errno: UInt32?, defaultErrno: UInt32?, field: String) throws(RuntimeError) -> UInt32 {
        switch name {
        case "SCMP_ACT_ALLOW": return 0x7fff_0000
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((errno ?? defaultErrno ?? UInt32(EPERM)) & 0xffff)
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return 0x0000_0000
        case "SCMP_ACT_KILL_PROCESS": return 0x8000_0000
        case "SCMP_ACT_TRAP": return 0x0003_0000
        case "SCMP_ACT_LOG": return 0x7ffc_0000
        case "SCMP_ACT_TRACE": return 0x7ff0_0000 | ((errno ?? defaultErrno ?? UInt32(EPERM)) & 0xffff)
        default: throw RuntimeError("\(field): unsupported seccomp action \"\(name)\"")
        }
    }

    static func operation(_ name: String, field: String) throws(RuntimeError) -> UInt32 {
        switch name {
        case "SCMP_CMP_NE": return 1
        case "SCMP_CMP_LT": return 2
        case "SCMP_CMP_LE": return 3
        case "SCMP_CMP_EQ": return 4
        case "SCMP_CMP_GE": return 5
        case "SCMP_CMP_GT": return 6
        case "SCMP_CMP_MASKED_EQ": return 7
        default: throw RuntimeError("\(field): unknown seccomp operator \"\(name)\"")
        }
    }

    /// libseccomp's name for an OCI architecture (`SCMP_ARCH_X86_64` → `x86_64`).
    static func architecture(_ name: String) -> String {
        var text = name.hasPrefix("SCMP_ARCH_") ? String(name.dropFirst(10)) : name
        text = text.lowercased()
        return text
    }

    /// The compiled filter for `seccomp`, from `cacheDirectory` when the same profile was compiled
    /// before (every pod uses RuntimeDefault: compiling it each time costs milliseconds).
    /// Files are named by the SHA-256 of the profile, written to a temporary name and renamed.
    public static func compiled(_ seccomp: RuntimeSpec.Seccomp, cacheDirectory: String) throws(RuntimeError) -> String {
        let encoded: [UInt8]
        do { encoded = try KubeJSON.encode(seccomp) } catch { throw RuntimeError("linux.seccomp: \(error)") }
        let key = StreamingDigest.hex(StreamingDigest.hash(.sha256, encoded))
        let path = "\(cacheDirectory)/\(key).bpf"
        if FileTree.exists(path) { return path }
        do { try FileTree.makeDirectories(cacheDirectory, mode: 0o700) } catch { throw RuntimeError("seccomp cache: \(error)") }
        // A name of its own per compile: containers starting together in one agent compile the
        // same profile at once, and a shared name let one rename another's file away (or
        // interleave two writes into one filter).
        let temporary = "\(path).tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        do throws(RuntimeError) {
            try compile(seccomp, to: temporary)
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = errno
            unlink(temporary)
            throw RuntimeError("seccomp cache \(path): \(String(cString: strerror(reason)))")
        }
        return path
    }

    /// Writes the compiled filter to `path`; returns how many syscalls this kernel/arch lacks.
    @discardableResult
    public static func compile(_ seccomp: RuntimeSpec.Seccomp, to path: String) throws(RuntimeError) -> Int {
        let field = "linux.seccomp"
        let defaultAction = try action(seccomp.defaultAction, errno: seccomp.defaultErrnoRet, defaultErrno: nil, field: "\(field).defaultAction")
        var names: [String] = []
        var actions: [UInt32] = []
        var argCounts: [Int32] = []
        var argIndex: [UInt32] = [], argOp: [UInt32] = [], argValue: [UInt64] = [], argValueTwo: [UInt64] = []
        for (ruleIndex, rule) in (seccomp.syscalls ?? []).enumerated() {
            let ruleField = "\(field).syscalls[\(ruleIndex)]"
            let ruleAction = try action(rule.action, errno: rule.errnoRet, defaultErrno: nil, field: "\(ruleField).action")
            for name in rule.names {
                names.append(name)
                actions.append(ruleAction)
                argCounts.append(Int32(rule.args?.count ?? 0))
                for (argumentIndex, argument) in (rule.args ?? []).enumerated() {
                    guard argument.index < 6 else { throw RuntimeError("\(ruleField).args[\(argumentIndex)].index: \(argument.index) is not 0-5") }
                    argIndex.append(argument.index)
                    argOp.append(try operation(argument.op, field: "\(ruleField).args[\(argumentIndex)].op"))
                    argValue.append(argument.value)
                    argValueTwo.append(argument.valueTwo ?? 0)
                }
            }
        }
        let architectures = (seccomp.architectures ?? []).map(architecture)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw RuntimeError("seccomp filter \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var skipped: Int32 = 0
        var message: UnsafePointer<CChar>?
        let logFlag = (seccomp.flags ?? []).contains("SECCOMP_FILTER_FLAG_LOG") ? Int32(1) : 0
        let result = withCStrings(names) { namePointers in
            withCStrings(architectures) { architecturePointers in
                iotkube_seccomp_compile(defaultAction, architecturePointers, Int32(architectures.count), namePointers, actions, argCounts,
                                        Int32(names.count), argIndex, argOp, argValue, argValueTwo, 0, logFlag, descriptor, &skipped, &message)
            }
        }
        guard result == 0 else { throw RuntimeError("\(field): \(message.map { String(cString: $0) } ?? "cannot compile the filter")") }
        return Int(skipped)
    }
}

/// Calls `body` with a C array of C strings valid for its duration.
func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    let pointers = duplicates.map { UnsafePointer<CChar>($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
