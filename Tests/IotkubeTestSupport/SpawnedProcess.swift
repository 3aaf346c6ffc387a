import CRuntime
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn` and reaped by its own pid, for the helpers the
/// tests run beside them (servers, agents, registries, watchers).
///
/// Foundation's `Process` learns of exits through one SIGCHLD source and closes descriptors by
/// number from several threads: with every suite starting processes at once it lost exits
/// (`waitUntilExit` never returned for a zombie) and closed other threads' pipes (EBADF).
public final class SpawnedProcess: @unchecked Sendable {
    /// Where the child's output (stdout and stderr together) goes.
    public enum Output {
        case null
        /// Appended to the file (created when missing).
        case file(String)
        /// A pipe whose read end is ``outputDescriptor``.
        case pipe
    }

    public let processIdentifier: pid_t
    /// The read end of the output pipe (`.pipe`), owned by this object; -1 otherwise.
    public let outputDescriptor: Int32
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable arguments…` with `environment` added to this process's; `input` is
    /// written to its stdin (then closed), else stdin is /dev/null.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], output: Output = .null, input: [UInt8]? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var toClose: [Int32] = []
        defer { toClose.forEach { close($0) } }
        var outputRead: Int32 = -1, inputWrite: Int32 = -1
        switch output {
        case .null:
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        case .file(let path):
            let file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard file >= 0 else { throw TestFailure("opening \(path): \(String(cString: strerror(errno)))") }
            toClose.append(file)
            posix_spawn_file_actions_adddup2(&actions, file, 1)
        case .pipe:
            var ends: [Int32] = [-1, -1]
            guard iotkube_pipe_cloexec(&ends) == 0 else { throw TestFailure("pipe: \(String(cString: strerror(errno)))") }
            outputRead = ends[0]
            toClose.append(ends[1])
            posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if input != nil {
            var ends: [Int32] = [-1, -1]
            guard iotkube_pipe_cloexec(&ends) == 0 else { throw TestFailure("pipe: \(String(cString: strerror(errno)))") }
            inputWrite = ends[1]
            toClose.append(ends[0])
            posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        iotkube_spawn_close_from(&actions, 3)
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { _, new in new }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = withCleanSpawnAttributes { posix_spawn(&pid, executable, &actions, &$0, argv, envp) }
        guard spawned == 0 else {
            if outputRead >= 0 { close(outputRead) }
            if inputWrite >= 0 { close(inputWrite) }
            throw TestFailure("starting \(executable): \(String(cString: strerror(spawned)))")
        }
        processIdentifier = pid
        outputDescriptor = outputRead
        if let input, inputWrite >= 0 {
            var offset = 0
            while offset < input.count {
                let count = input[offset...].withUnsafeBytes { write(inputWrite, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                offset += count
            }
            close(inputWrite)
        }
    }

    deinit {
        if outputDescriptor >= 0 { close(outputDescriptor) }
    }

    /// Whether the child has not exited yet (an exited one is reaped here).
    public var isRunning: Bool {
        reap(blocking: false)
        return lock.withLock { exitStatus == nil }
    }

    /// SIGTERM.
    public func terminate() { signal(SIGTERM) }

    /// SIGINT.
    public func interrupt() { signal(SIGINT) }

    /// Sends `number` unless the child was already reaped (its pid may belong to another by then).
    public func signal(_ number: Int32) {
        lock.withLock { if exitStatus == nil { _ = kill(processIdentifier, number) } }
    }

    /// Waits for the child to exit.
    public func waitUntilExit() { reap(blocking: true) }

    /// The exit code, or the signal that ended the child (as Foundation reports it).
    public var terminationStatus: Int32 {
        let status = lock.withLock { exitStatus } ?? 0
        return status & 0x7f == 0 ? (status >> 8) & 0xff : status & 0x7f
    }

    /// Whether a signal ended the child.
    public var terminatedBySignal: Bool {
        let status = lock.withLock { exitStatus } ?? 0
        return status & 0x7f != 0
    }

    private func reap(blocking: Bool) {
        if lock.withLock({ exitStatus != nil }) { return }
        var status: Int32 = 0
        while true {
            let result = waitpid(processIdentifier, &status, blocking ? 0 : WNOHANG)
            if result == processIdentifier {
                lock.withLock { exitStatus = status }
                return
            }
            if result == 0 { return }
            if errno == EINTR { continue }
            // ECHILD: another thread reaped it; wait until it has recorded the status.
            while blocking && lock.withLock({ exitStatus == nil }) { usleep(1000) }
            return
        }
    }
}
