#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime

/// Runs a short-lived helper (a CNI plugin, the sandbox helper, a probe's command in a
/// container) with a given environment, feeds it `input`, collects stdout and stderr (4 MiB
/// each at most), and kills it — with everything it started — when it overruns its deadline.
public enum CapturedProcess {
    public struct Outcome: Sendable {
        public var status: Int32
        public var output: [UInt8]
        public var errorOutput: [UInt8]
        public var timedOut: Bool
    }

    public static func run(
        _ executable: String, _ arguments: [String], environment: [String]? = nil, input: [UInt8] = [], timeoutSeconds: Double,
        cancelled: (@Sendable () -> Bool)? = nil
    ) throws(RuntimeError) -> Outcome {
        var stdin: [Int32] = [-1, -1], stdout: [Int32] = [-1, -1], stderr: [Int32] = [-1, -1]
        guard iotkube_pipe_cloexec(&stdin) == 0, iotkube_pipe_cloexec(&stdout) == 0, iotkube_pipe_cloexec(&stderr) == 0 else {
            for fd in stdin + stdout + stderr where fd >= 0 { close(fd) }
            throw RuntimeError("pipe: \(String(cString: strerror(errno)))")
        }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(
                executable, arguments, descriptors: [0: stdin[0], 1: stdout[1], 2: stderr[1]], environment: environment, newProcessGroup: true)
        } catch {
            for fd in stdin + stdout + stderr { close(fd) }
            throw error
        }
        close(stdin[0]); close(stdout[1]); close(stderr[1])
        _ = fcntl(stdin[1], F_SETFL, fcntl(stdin[1], F_GETFL) | O_NONBLOCK)
        var writeFD = input.isEmpty ? Int32(-1) : stdin[1]
        if writeFD < 0 { close(stdin[1]) }
        var readFDs = [stdout[0], stderr[0]]
        var outputs: [[UInt8]] = [[], []]
        var written = 0
        var timedOut = false
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Double(deadline.tv_sec) + Double(deadline.tv_nsec) / 1e9 + timeoutSeconds
        while writeFD >= 0 || readFDs.contains(where: { $0 >= 0 }) {
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let left = end - (Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
            // Stopped by the caller (a probe of a run that ended): ended as an overrun is.
            if left <= 0 || cancelled?() == true { timedOut = true; break }
            var fds = [pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)]
            for fd in readFDs { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(min(left * 1000, cancelled == nil ? 1000 : 200)) + 1)
            if ready < 0 && errno != EINTR { break }
            if writeFD >= 0 && fds[0].revents != 0 {
                let count = input[written...].withUnsafeBytes { write(writeFD, $0.baseAddress, $0.count) }
                if count > 0 { written += count }
                if count < 0 && errno != EAGAIN && errno != EINTR || written >= input.count { close(writeFD); writeFD = -1 }
            }
            for index in 0..<2 where readFDs[index] >= 0 && fds[index + 1].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 16384)
                let count = chunk.withUnsafeMutableBytes { read(readFDs[index], $0.baseAddress, $0.count) }
                if count > 0 {
                    if outputs[index].count < 4 << 20 { outputs[index] += chunk[..<count] }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(readFDs[index]); readFDs[index] = -1
                }
            }
        }
        // An overrunning helper goes with everything it started (a plugin's iptables, sleep, …).
        if timedOut { kill(-pid, SIGKILL) }
        if writeFD >= 0 { close(writeFD) }
        for fd in readFDs where fd >= 0 { close(fd) }
        let status = ProcessSpawner.wait(pid)
        return Outcome(status: status, output: outputs[0], errorOutput: outputs[1], timedOut: timedOut)
    }
}

extension [UInt8] {
    /// The bytes as text, trimmed, for error messages.
    public var trimmedText: String {
        let text = String(decoding: self, as: UTF8.self)
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
