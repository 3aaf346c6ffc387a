#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import SystemSupport

/// posix_spawn of the agent binary in one of its C helper modes (never fork from Swift).
public enum ProcessSpawner {
    /// The running executable (the agent binary carries the C helpers).
    public static func currentExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `executable arguments…`. `descriptors` maps child descriptor numbers to ours
    /// (e.g. `[1: logFile, 3: reportPipe]`); unmapped stdio is inherited, with `nullInput` stdin is
    /// /dev/null, and every other descriptor is closed in the child. `environment` (NAME=value)
    /// replaces ours when given; `argv0` is the name the program sees (default: `executable`). `newProcessGroup`: the child leads its own process group, so
    /// everything it starts can be killed together.
    public static func spawn(
        _ executable: String, _ arguments: [String], descriptors: [Int32: Int32] = [:], nullInput: Bool = false, environment: [String]? = nil,
        argv0: String? = nil, newProcessGroup: Bool = false
    ) throws(RuntimeError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if nullInput { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        for (target, source) in descriptors.sorted(by: { $0.key < $1.key }) { posix_spawn_file_actions_adddup2(&actions, source, target) }
        iotkube_spawn_close_from(&actions, max(3, (descriptors.keys.max() ?? 0) + 1))
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attributes, 0)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        }
        // The child starts with no signal blocked and every disposition at its default: the
        // spawning thread's mask (runtime threads block signals) and what this process ignores
        // (SIGPIPE) are inherited across exec and would reach exec'd commands and hooks (a
        // shell whose SIGCHLD stays blocked never returns from `wait`).
        iotkube_spawnattr_default_signals(&attributes)
        var pid: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = ([argv0 ?? executable] + arguments).map { strdup($0) }
        argv.append(nil)
        defer { for argument in argv { free(argument) } }
        var result: Int32
        if let environment {
            var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) }
            envp.append(nil)
            defer { for variable in envp { free(variable) } }
            result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        } else {
            result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        }
        guard result == 0 else { throw RuntimeError("cannot start \(executable): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Runs a command to its end with its stdout and stderr read (or sent to `output`), its
    /// stdin /dev/null; its exit code and its first 200 lines.
    public static func capture(_ executable: String, _ arguments: [String], output: Int32? = nil) throws(RuntimeError) -> (status: Int32, output: String) {
        if let output { return (wait(try spawn(executable, arguments, descriptors: [1: output, 2: output], nullInput: true)), "") }
        let (pid, reader) = try spawnReading(executable, arguments, at: [1, 2], nullInput: true)
        var lines: [String] = []
        while let line = reader.line(), lines.count < 200 { lines.append(line) }
        while reader.line() != nil {}
        return (wait(pid), lines.joined(separator: "\n"))
    }

    /// Spawns with the write end of a new pipe at each of `descriptors`; the read end, as lines.
    static func spawnReading(_ executable: String, _ arguments: [String], at descriptors: [Int32], nullInput: Bool = false) throws(RuntimeError)
        -> (pid: pid_t, reader: ReportReader) {
        var ends: [Int32] = [0, 0]
        guard iotkube_pipe_cloexec(&ends) == 0 else { throw RuntimeError("pipe: \(String(cString: strerror(errno)))") }
        let pid: pid_t
        do {
            pid = try spawn(executable, arguments, descriptors: Dictionary(uniqueKeysWithValues: descriptors.map { ($0, ends[1]) }), nullInput: nullInput)
        } catch {
            close(ends[0])
            close(ends[1])
            throw error
        }
        close(ends[1])
        return (pid, ReportReader(ends[0]))
    }

    /// Waits for a child; its exit code (128+signal when killed).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        guard SystemCall.retrying({ waitpid(pid, &status, 0) }) >= 0 else { return -1 }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}

/// Reads newline-terminated reports from the monitor's pipe.
final class ReportReader {
    let descriptor: Int32
    private var pending: [UInt8] = []

    init(_ descriptor: Int32) { self.descriptor = descriptor }
    deinit { close(descriptor) }

    /// The next line, or nil at end of file.
    func line() -> String? {
        while true {
            if let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 1024)
            let count = SystemCall.retrying { chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) } }
            guard count > 0 else {
                if pending.isEmpty { return nil }
                defer { pending = [] }
                return String(decoding: pending, as: UTF8.self)
            }
            pending.append(contentsOf: chunk[..<count])
        }
    }
}
