#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import Logging
import ServiceLifecycle
import Synchronization
import SystemSupport

/// Wakes a pod worker as soon as one of its containers' exits is recorded (the monitor renames
/// the exit record into the container's state directory): one inotify watch per running
/// container. A pod whose containers all run and are watched is then looked at every
/// ``PodHost/steadySyncInterval`` instead of every second; an exit still reaches its worker
/// at once. Runs as a service: a thread of its own waits on the inotify descriptor.
public final class ContainerExitWatch: Service, Sendable {
    private let inotify: Int32
    /// A pipe whose write end stops the reading thread.
    private let stop: (read: Int32, write: Int32)
    /// The worker to wake for each watch.
    private let watches = Mutex<[Int32: WakeSignal]>([:])
    /// The reading thread ended on an error: no new watches (workers look every second).
    private let failed = Atomic<Bool>(false)
    private let logger: Logger

    /// Nil where inotify is not available (the workers then look every second).
    public init?(logger: Logger) {
        let inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotify >= 0 else { return nil }
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            close(inotify)
            return nil
        }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        self.inotify = inotify
        stop = (pipeEnds[0], pipeEnds[1])
        self.logger = logger
    }

    deinit {
        close(inotify)
        close(stop.read)
        close(stop.write)
    }

    /// One directory watched for one worker.
    public struct Watch: Sendable {
        let descriptor: Int32
    }

    /// The name the monitor renames a finished container's record to.
    static let exitRecordName = "exit.json"

    /// Wakes `wake` when an exit record appears in `directory`; nil when it cannot be watched
    /// (gone already, out of watches, the reading thread failed: the worker then keeps looking
    /// every second).
    func watch(_ directory: String, wake: WakeSignal) -> Watch? {
        guard !failed.load(ordering: .relaxed) else { return nil }
        // The rename of the finished record, or the directory going away.
        let descriptor = inotify_add_watch(inotify, directory, UInt32(IN_MOVED_TO | IN_DELETE_SELF | IN_ONLYDIR))
        guard descriptor >= 0 else { return nil }
        watches.withLock { $0[descriptor] = wake }
        return Watch(descriptor: descriptor)
    }

    /// Stops a watch (its container was replaced or stopped).
    func unwatch(_ watch: Watch) {
        let removed = watches.withLock { $0.removeValue(forKey: watch.descriptor) != nil }
        // Not when the kernel dropped it already (the directory went): the number may be taken.
        if removed { _ = inotify_rm_watch(inotify, watch.descriptor) }
    }

    public func run() async throws {
        let inotify = self.inotify, stop = self.stop
        await withTaskCancellationOrGracefulShutdownHandler {
            await DedicatedThread.run { [self] in readEvents(inotify: inotify, stop: stop.read) }
        } onCancelOrGracefulShutdown: {
            var byte: UInt8 = 1
            _ = write(stop.write, &byte, 1)
        }
        if failed.load(ordering: .relaxed) {
            // Not a reason to stop the agent: wake every worker (they look every second from
            // now on) and wait for the agent's end.
            for wake in watches.withLock({ Array($0.values) }) { wake.signal() }
            try? await gracefulShutdown()
        }
    }

    /// Reads events until `stop` is signalled, waking the workers concerned.
    private func readEvents(inotify: Int32, stop: Int32) {
        var descriptors = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                logger.warning("watching container exits: poll: \(String(cString: strerror(errno))); pods are looked at every second")
                failed.store(true, ordering: .relaxed)
                return
            }
            if descriptors[1].revents != 0 { return }
            let count = buffer.withUnsafeMutableBytes { read(inotify, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                logger.warning("watching container exits: read: \(String(cString: strerror(errno))); pods are looked at every second")
                failed.store(true, ordering: .relaxed)
                return
            }
            var woken: [WakeSignal] = []
            var offset = 0
            let headerSize = MemoryLayout<inotify_event>.size
            while offset + headerSize <= count {
                let (descriptor, mask, nameLength) = buffer.withUnsafeBytes { bytes in
                    (bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self),
                     bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self),
                     Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)))
                }
                let name = nameLength == 0 ? "" : buffer.withUnsafeBytes { bytes in
                    String(decoding: bytes[(offset + headerSize)..<min(count, offset + headerSize + nameLength)].prefix { $0 != 0 }, as: UTF8.self)
                }
                offset += headerSize + nameLength
                // Only the exit record's arrival, or the directory's end, concerns the worker.
                let relevant = mask & UInt32(IN_MOVED_TO) == 0 || name == Self.exitRecordName
                watches.withLock { watches in
                    if relevant, let wake = watches[descriptor] { woken.append(wake) }
                    // The directory went (the container was deleted), or the queue overflowed
                    // (every worker is woken below).
                    if mask & UInt32(IN_IGNORED) != 0 { watches[descriptor] = nil }
                }
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { woken += watches.withLock { Array($0.values) } }
            }
            for wake in woken { wake.signal() }
        }
    }
}
