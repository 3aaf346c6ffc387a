import CRuntime
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a command to completion with `posix_spawn`, its output and errors in one pipe.
///
/// Foundation's `Process` with `Pipe`s is not safe when many threads start processes at once
/// (descriptors closed twice, `try!` on `EBADF` and `EINTR` inside Foundation): the test process
/// crashed that way with every suite starting kubectl, curl and the agent in parallel. Here each
/// descriptor has one owner, every call retries `EINTR`, and the child gets only its three.
enum ChildProcess {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The exit status (or the signal that ended it), the output, and whether `timeout` ran out
    /// (the child then got SIGTERM, SIGKILL five seconds later, and five seconds after that the
    /// output is no longer waited for).
    static func run(_ executable: String, _ arguments: [String], input: [UInt8], timeout: TimeInterval) throws -> (status: Int32, signaled: Bool, output: [UInt8], timedOut: Bool) {
        var outputPipe: [Int32] = [-1, -1], inputPipe: [Int32] = [-1, -1]
        guard iotkube_pipe_cloexec(&outputPipe) == 0 else { throw Failure(description: "pipe: \(String(cString: strerror(errno)))") }
        guard iotkube_pipe_cloexec(&inputPipe) == 0 else {
            let code = errno
            close(outputPipe[0]); close(outputPipe[1])
            throw Failure(description: "pipe: \(String(cString: strerror(code)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inputPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 2)
        // Nothing else reaches the child: a descriptor of another test's pipe held open by a
        // long-lived child would keep that test's read from ever seeing the end.
        iotkube_spawn_close_from(&actions, 3)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = withCleanSpawnAttributes { posix_spawn(&pid, executable, &actions, &$0, argv, environ) }
        close(inputPipe[0])
        close(outputPipe[1])
        guard spawned == 0 else {
            close(inputPipe[1]); close(outputPipe[0])
            throw Failure(description: "starting \(executable): \(String(cString: strerror(spawned)))")
        }
        var writer: Int32 = inputPipe[1]
        if input.isEmpty { close(writer); writer = -1 }
        let reader = outputPipe[0]
        defer {
            if writer >= 0 { close(writer) }
            close(reader)
        }
        if writer >= 0 { _ = fcntl(writer, F_SETFL, O_NONBLOCK) }
        var output: [UInt8] = []
        var written = 0
        var timedOut = false
        var killAt: Date?, giveUpAt: Date?
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var fds = [pollfd(fd: reader, events: Int16(POLLIN), revents: 0)]
            if writer >= 0 { fds.append(pollfd(fd: writer, events: Int16(POLLOUT), revents: 0)) }
            let now = Date()
            if !timedOut, now >= deadline {
                timedOut = true
                kill(pid, SIGTERM)
                killAt = now.addingTimeInterval(5)
            }
            if let due = killAt, now >= due {
                kill(pid, SIGKILL)
                killAt = nil
                giveUpAt = now.addingTimeInterval(5)
            }
            // Something the child started may hold the output open after the child is gone.
            if let due = giveUpAt, now >= due { break }
            let wait = timedOut ? 1000 : Int32(max(1, min(1000, deadline.timeIntervalSince(now) * 1000)))
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "poll: \(String(cString: strerror(errno)))")
            }
            if writer >= 0, fds[1].revents != 0 {
                let count = input[written...].withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
                if count > 0 { written += count }
                // A child that stops reading its input (it exited) gets no more.
                if written == input.count || (count < 0 && errno != EINTR && errno != EAGAIN) {
                    close(writer); writer = -1
                }
            }
            if fds[0].revents != 0 {
                let count = read(reader, &buffer, buffer.count)
                if count > 0 { output += buffer[0..<count]; continue }
                if count == 0 { break }
                if errno == EINTR { continue }
                throw Failure(description: "reading the output of \(executable): \(String(cString: strerror(errno)))")
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(description: "waitpid: \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7f
        if signal != 0 { return (signal, true, output, timedOut) }
        return ((status >> 8) & 0xff, false, output, timedOut)
    }
}
