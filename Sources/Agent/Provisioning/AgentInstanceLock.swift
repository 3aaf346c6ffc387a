#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// One agent per state directory: `<state>/agent.lock`, held (flock) for the process's life
/// and released by the kernel when it ends, however it ends. A second `run` (a restart right
/// after a stop) waits for the first to be gone instead of managing the same containers;
/// `reset` waits the same way before it removes the state.
public final class AgentInstanceLock: Sendable {
    let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// The lock's path in `stateDirectory`.
    public static func path(in stateDirectory: String) -> String { stateDirectory + "/agent.lock" }

    /// Takes the lock, waiting up to `waitSeconds` for the agent that holds it; `waiting` is
    /// told once which pid holds it. Creates the state directory when missing.
    public static func acquire(stateDirectory: String, waitSeconds: Int, waiting: (Int32?) -> Void = { _ in }) throws(ProvisioningError) -> AgentInstanceLock {
        do { try AtomicFile.makeDirectory(stateDirectory) } catch { throw ProvisioningError("\(stateDirectory): \(error)") }
        let path = path(in: stateDirectory)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw ProvisioningError("\(path): \(String(cString: strerror(errno)))") }
        var told = false
        var tries = 0
        while SystemCall.retrying({ flock(descriptor, LOCK_EX | LOCK_NB) }) != 0 {
            guard errno == EWOULDBLOCK else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw ProvisioningError("\(path): \(reason)")
            }
            let holder = Self.holder(descriptor)
            guard tries < waitSeconds * 5 else {
                close(descriptor)
                throw ProvisioningError("another iotkube-agent\(holder.map { " (pid \($0))" } ?? "") still runs with \(stateDirectory) after \(waitSeconds) s: stop it first")
            }
            if !told { waiting(holder); told = true }
            tries += 1
            usleep(200_000)
        }
        // Who holds it, for the next one's message.
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 { _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) } }
        return AgentInstanceLock(descriptor: descriptor)
    }

    /// The pid the holder wrote into the lock file.
    static func holder(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 16)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 15, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[..<count], as: UTF8.self).trimming([" ", "\n"]))
    }
}
