#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Controls systemd units through `systemctl` (spawned with posix_spawn, never fork).
public enum SystemdUnit {
    public enum Result: Equatable, Sendable {
        case started
        case noSystemd
        case failed(Int32)
    }

    /// Whether systemd is the init system (`/run/systemd/system` exists).
    public static var systemdIsRunning: Bool { access("/run/systemd/system", F_OK) == 0 }

    /// `systemctl enable --now <unit>`.
    public static func enableAndStart(_ unit: String) -> Result {
        guard systemdIsRunning else { return .noSystemd }
        let status = run(["systemctl", "enable", "--now", unit])
        return status == 0 ? .started : .failed(status)
    }

    /// Runs a program found on PATH and waits for it; returns its exit status (127 if it could not start).
    public static func run(_ arguments: [String]) -> Int32 {
        var pid: pid_t = 0
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        guard posix_spawnp(&pid, arguments[0], nil, nil, cArguments, environ) == 0 else { return 127 }
        var status: Int32 = 0
        _ = SystemCall.retrying { waitpid(pid, &status, 0) }
        return (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }
}

/// Facts about this machine.
public enum HostFacts {
    /// The host name (uname nodename).
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(cString: buffer)
    }
}

/// Writes a line to standard error.
public func printToStandardError(_ message: String) {
    let line = Array((message + "\n").utf8)
    line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}
