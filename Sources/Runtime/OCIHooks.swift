#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import OCI

/// OCI hooks: checked when a bundle is loaded, handed to the C side for those run while the
/// container is created and started (prestart, createRuntime, createContainer, startContainer),
/// and run here for poststart and poststop, each with the container's state on its stdin.
enum OCIHooks {
    /// Hooks the C side runs, in the order the runtime spec gives them.
    static let setupKinds: [(name: String, tag: String)] = [("prestart", "p"), ("createRuntime", "r"), ("createContainer", "c"), ("startContainer", "s")]

    static func list(_ hooks: RuntimeSpec.Hooks?) -> [(name: String, hooks: [RuntimeSpec.Hook])] {
        guard let hooks else { return [] }
        return [("prestart", hooks.prestart), ("createRuntime", hooks.createRuntime), ("createContainer", hooks.createContainer),
                ("startContainer", hooks.startContainer), ("poststart", hooks.poststart), ("poststop", hooks.poststop)]
            .map { ($0.0, $0.1 ?? []) }
    }

    /// Every hook's path absolute, its timeout positive (a day at most), its lists bounded and
    /// free of NUL; at most 16 run during setup.
    static func validate(_ hooks: RuntimeSpec.Hooks?, in path: String) throws(RuntimeError) {
        var setup = 0
        for (name, list) in list(hooks) {
            if setupKinds.contains(where: { $0.name == name }) { setup += list.count }
            for (index, hook) in list.enumerated() {
                let field = "\(path): hooks.\(name)[\(index)]"
                guard hook.path.hasPrefix("/"), !hook.path.contains("\0") else { throw RuntimeError("\(field).path: \"\(hook.path)\" is not an absolute path") }
                if let timeout = hook.timeout, !(1...86_400).contains(timeout) { throw RuntimeError("\(field).timeout: \(timeout) must be 1 to 86400 seconds") }
                guard (hook.args ?? []).count <= 32 else { throw RuntimeError("\(field).args: more than 32") }
                guard (hook.env ?? []).count <= 64 else { throw RuntimeError("\(field).env: more than 64") }
                for text in (hook.args ?? []) + (hook.env ?? []) where text.contains("\0") { throw RuntimeError("\(field): a value holds a NUL byte") }
                for variable in hook.env ?? [] where !variable.contains("=") { throw RuntimeError("\(field).env: \"\(variable)\" is not NAME=value") }
            }
        }
        guard setup <= 16 else { throw RuntimeError("\(path): hooks: more than 16 prestart, createRuntime, createContainer and startContainer hooks") }
    }

    /// The plan records of the setup hooks, and the state they get around its status and pid.
    static func record(_ hooks: RuntimeSpec.Hooks?, state: OCIState, into plan: inout LaunchPlan) throws(RuntimeError) {
        let all = list(hooks)
        var any = false
        for (name, tag) in setupKinds {
            for hook in all.first(where: { $0.name == name })?.hooks ?? [] {
                let args = hook.args ?? [], env = hook.env ?? []
                plan.record("hook", [tag, hook.path, String(hook.timeout ?? 0), String(args.count)] + args + [String(env.count)] + env)
                any = true
            }
        }
        guard any else { return }
        let (prefix, suffix) = stateJSON(state)
        // The C side builds the state in 8 KiB.
        guard prefix.utf8.count + suffix.utf8.count < 8000 else {
            throw RuntimeError("hooks: the container's state (\(prefix.utf8.count + suffix.utf8.count) bytes of id, bundle and annotations) is too large to give hooks (8000 at most)")
        }
        plan.record("hookstate", [prefix, suffix])
    }

    /// The state as JSON in two parts: up to the status's value, and after the pid.
    static func stateJSON(_ state: OCIState) -> (prefix: String, suffix: String) {
        let annotations = (state.annotations ?? [:]).sorted { $0.key < $1.key }.map { "\(quoted($0.key)):\(quoted($0.value))" }.joined(separator: ",")
        return ("{\"ociVersion\":\(quoted(state.ociVersion)),\"id\":\(quoted(state.id)),\"status\":\"",
                ",\"bundle\":\(quoted(state.bundle)),\"annotations\":{\(annotations)}}")
    }

    static func json(_ state: OCIState) -> String {
        let (prefix, suffix) = stateJSON(state)
        return prefix + state.status.rawValue + "\",\"pid\":\(state.pid ?? 0)" + suffix
    }

    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// A warning of the runtime spec's kind (a failed poststart or poststop hook): to stderr.
    static func warn(_ message: String) {
        let line = Array("iotkube-agent runtime: warning: \(message)\n".utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// Runs poststart or poststop hooks in order; a failure is a warning (the runtime spec's
    /// rule for these two) and the next hook still runs. Returns the warnings.
    static func run(_ hooks: [RuntimeSpec.Hook], kind: String, state: OCIState) -> [String] {
        var warnings: [String] = []
        let input = Array(json(state).utf8)
        for hook in hooks {
            if let problem = runOne(hook, input: input) { warnings.append("\(kind) hook \(hook.path): \(problem)") }
        }
        return warnings
    }

    /// nil when the hook exited 0.
    static func runOne(_ hook: RuntimeSpec.Hook, input: [UInt8]) -> String? {
        var stdinPipe: [Int32] = [0, 0], outputPipe: [Int32] = [0, 0]
        guard iotkube_pipe_cloexec(&stdinPipe) == 0 else { return "pipe: \(String(cString: strerror(errno)))" }
        guard iotkube_pipe_cloexec(&outputPipe) == 0 else {
            close(stdinPipe[0]); close(stdinPipe[1])
            return "pipe: \(String(cString: strerror(errno)))"
        }
        let args = hook.args ?? []
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(hook.path, Array(args.dropFirst()), descriptors: [0: stdinPipe[0], 1: outputPipe[1], 2: outputPipe[1]],
                                           environment: hook.env ?? [], argv0: args.first, newProcessGroup: true)
        } catch {
            for descriptor in stdinPipe + outputPipe { close(descriptor) }
            return "\(error)"
        }
        close(stdinPipe[0])
        close(outputPipe[1])
        // The state goes in as the hook reads it, within its timeout (SIGPIPE ignored: a hook
        // that does not read it closes its end).
        signal(SIGPIPE, SIG_IGN)
        _ = fcntl(stdinPipe[1], F_SETFL, O_NONBLOCK)
        defer { close(outputPipe[0]) }
        return wait(pid, writing: input, to: stdinPipe[1], reading: outputPipe[0], timeoutSeconds: hook.timeout)
    }

    /// Feeds the state and waits for the hook (killing its process group at the timeout),
    /// keeping the start of what it printed for the message; nil when it exited 0.
    static func wait(_ pid: pid_t, writing input: [UInt8], to inputDescriptor: Int32, reading output: Int32, timeoutSeconds: Int?) -> String? {
        let deadline = timeoutSeconds.map { ContinuousClock.now + .seconds($0) }
        var said: [UInt8] = []
        var open = true
        var status: Int32 = 0
        var pending: Int32 = inputDescriptor, written = 0
        defer { if pending >= 0 { close(pending) } }
        while true {
            var descriptors = [pollfd(fd: open ? output : -1, events: Int16(POLLIN), revents: 0), pollfd(fd: pending, events: Int16(POLLOUT), revents: 0)]
            _ = poll(&descriptors, 2, 10)
            if pending >= 0, descriptors[1].revents != 0 {
                let count = input[written...].withUnsafeBytes { write(pending, $0.baseAddress, $0.count) }
                if count > 0 { written += count }
                if (count < 0 && errno != EAGAIN && errno != EINTR) || written == input.count {
                    close(pending)
                    pending = -1
                }
            }
            if open, descriptors[0].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 512)
                let count = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
                if count <= 0 { open = false } else if said.count < 300 { said += chunk[..<min(count, 300 - said.count)] }
            }
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR { return "waiting for it: \(String(cString: strerror(errno)))" }
            if let deadline, ContinuousClock.now > deadline {
                _ = kill(-pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return "timed out after \(timeoutSeconds ?? 0) s"
            }
        }
        var text = String(decoding: said, as: UTF8.self)
        while let last = text.last, last == " " || last == "\n" { text.removeLast() }
        if status & 0x7f == 0 {
            let code = (status >> 8) & 0xff
            return code == 0 ? nil : "exited with \(code)" + (text.isEmpty ? "" : ": \(text)")
        }
        return "killed by signal \(status & 0x7f)"
    }
}
