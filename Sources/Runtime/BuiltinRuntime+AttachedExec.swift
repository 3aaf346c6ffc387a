#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import OCI
import Synchronization
import SystemSupport

/// A process started inside a running container whose stdio the caller drives (`kubectl exec`):
/// pipes, or the master of a terminal from the container's own devpts.
public struct AttachedProcess: Sendable {
    /// The exec helper's pid (it waits for the process and exits with its code).
    public let pid: Int32
    /// Where to write the process's stdin (nil when it has none: /dev/null).
    public let input: Int32?
    /// The process's stdout, or the terminal's master (both ways) with a terminal.
    public let output: Int32
    /// The process's stderr; with a terminal, the helper's own errors (the process's stderr
    /// is the terminal).
    public let errors: Int32
    /// Whether `output` is a terminal master (resizable).
    public let terminal: Bool
    /// The helper's plan, removed once it exited.
    let planPath: String
    /// With a terminal the process waits for ``start()`` (its terminal's size is set first).
    let startGate: StartGate?

    /// Lets a process with a terminal go on (idempotent; the process waits until then).
    public func start() { startGate?.open() }

    /// Makes a process with a terminal that has not started exit without running.
    public func abandon() { startGate?.abandon() }

    /// Waits for the process (blocking); its exit code, 128+signal when killed.
    public func wait() -> Int32 {
        let code = ProcessSpawner.wait(pid)
        unlink(planPath)
        return code
    }

    /// Sizes the terminal through a descriptor of its own (the caller may close `output`).
    let sizer: TerminalSizer?

    /// Sets the terminal's size (no-op without a terminal, or once ``closeTerminalSizer()`` ran).
    public func resize(columns: UInt16, rows: UInt16) { sizer?.resize(columns: columns, rows: rows) }

    /// Closes the descriptor resizes go through (once the session is over).
    public func closeTerminalSizer() { sizer?.close() }
}

extension BuiltinRuntime {
    /// Starts `process` inside running container `id` with its stdio given to the caller, who
    /// owns (and must close) the returned descriptors. With `process.terminal` the process gets
    /// a terminal from the container's devpts as its controlling terminal and stdio (as runc
    /// and crun do for `exec -t`); `stdin` false gives it /dev/null.
    public func execAttached(id: String, process: RuntimeSpec.Process, stdin: Bool) throws(RuntimeError) -> AttachedProcess {
        let terminal = process.terminal == true
        let (planPath, arguments) = try execPlan(id: id, process: process, terminal: terminal)
        var opened: [Int32] = []
        func pair(_ make: (UnsafeMutablePointer<Int32>) -> Int32, _ what: String) throws(RuntimeError) -> (Int32, Int32) {
            var ends: [Int32] = [-1, -1]
            guard make(&ends) == 0 else { throw RuntimeError("exec: \(what): \(String(cString: strerror(errno)))") }
            opened += ends
            return (ends[0], ends[1])
        }
        do throws(RuntimeError) {
            let errors = try pair(iotkube_pipe_cloexec, "pipe")
            if terminal {
                let console = try pair(iotkube_socketpair_cloexec, "socketpair")
                let pid = try ProcessSpawner.spawn(helper, arguments + ["3"], descriptors: [1: errors.1, 2: errors.1, 3: console.1], nullInput: true)
                close(errors.1)
                close(console.1)
                opened = []
                // A container can stop the process before it sends the terminal: give up then.
                let master = iotkube_receive_descriptor(console.0, 10_000)
                let reason = errno
                opened = []
                let gate = StartGate(console.0)
                guard master >= 0 else {
                    // The helper failed before the terminal existed (its message says why), or
                    // the process never sent it (killed with the helper).
                    if reason == ETIMEDOUT { Glibc.kill(pid, SIGKILL) }
                    gate.abandon()
                    let message = reason == ETIMEDOUT ? "" : Self.drain(errors.0)
                    close(errors.0)
                    _ = ProcessSpawner.wait(pid)
                    unlink(planPath)
                    throw RuntimeError(message.isEmpty ? "exec: no terminal from the container: \(String(cString: strerror(reason)))" : message)
                }
                guard isatty(master) == 1 else {
                    close(master)
                    close(errors.0)
                    Glibc.kill(pid, SIGKILL)
                    gate.abandon()
                    _ = ProcessSpawner.wait(pid)
                    unlink(planPath)
                    throw RuntimeError("exec: the container sent something that is not a terminal")
                }
                return AttachedProcess(pid: pid, input: nil, output: master, errors: errors.0, terminal: true, planPath: planPath, startGate: gate, sizer: TerminalSizer(duplicating: master))
            }
            let output = try pair(iotkube_pipe_cloexec, "pipe")
            let input = stdin ? try pair(iotkube_pipe_cloexec, "pipe") : nil
            var descriptors: [Int32: Int32] = [1: output.1, 2: errors.1]
            if let input { descriptors[0] = input.0 }
            let pid = try ProcessSpawner.spawn(helper, arguments, descriptors: descriptors, nullInput: input == nil)
            for end in [output.1, errors.1] + (input.map { [$0.0] } ?? []) { close(end) }
            return AttachedProcess(pid: pid, input: input?.1, output: output.0, errors: errors.0, terminal: false, planPath: planPath, startGate: nil, sizer: nil)
        } catch {
            for descriptor in opened { close(descriptor) }
            unlink(planPath)
            throw error
        }
    }

    /// What is left to read from a pipe whose writers are gone (bounded).
    static func drain(_ descriptor: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let count = SystemCall.retrying { chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) } }
            guard count > 0 else { break }
            bytes += chunk[..<count]
        }
        while let last = bytes.last, last == 0x0A || last == 0x20 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The descriptor a terminal exec's process waits on: one byte lets it run, closing without
/// one makes it exit; once.
public final class StartGate: Sendable {
    private let descriptor: Mutex<Int32?>

    init(_ descriptor: Int32) { self.descriptor = Mutex(descriptor) }

    func open() { release(start: true) }

    /// The process exits without running its command.
    func abandon() { release(start: false) }

    private func release(start: Bool) {
        descriptor.withLock { held in
            guard let fd = held else { return }
            if start {
                var byte: UInt8 = 1
                _ = SystemCall.retrying { write(fd, &byte, 1) }
            }
            close(fd)
            held = nil
        }
    }

    deinit { abandon() }
}

/// A terminal master's own descriptor for size changes: closed once, under a lock, so a late
/// resize never reaches a descriptor number reused by something else.
public final class TerminalSizer: Sendable {
    private let descriptor: Mutex<Int32?>

    init?(duplicating master: Int32) {
        let copy = fcntl(master, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else { return nil }
        descriptor = Mutex(copy)
    }

    func resize(columns: UInt16, rows: UInt16) {
        descriptor.withLock { held in
            guard let fd = held else { return }
            var size = winsize(ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
            _ = ioctl(fd, UInt(TIOCSWINSZ), &size)
        }
    }

    func close() {
        descriptor.withLock { held in
            if let fd = held { _ = Glibc.close(fd) }
            held = nil
        }
    }

    deinit { close() }
}
