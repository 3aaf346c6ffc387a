#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import NIOPosix

/// systemd-logind over the system bus, for the graceful node shutdown: a delay inhibitor lock
/// on shutdown, logind's longest delay, and its PrepareForShutdown signal (only from logind's
/// own connection: a signal any other client of the bus sends is ignored). The calls block
/// (at most 30 s each) and run on the thread pool. One task uses a connection at a time.
final class LogindConnection: @unchecked Sendable {
    private let handle: OpaquePointer

    /// What came from logind since the last look.
    enum Signal: Equatable {
        case none
        /// Nothing yet, but more messages wait: look again at once.
        case more
        case shutdownBegins, shutdownCancelled
    }

    private init(handle: OpaquePointer) { self.handle = handle }

    /// Connects to logind (an error names what is missing: the bus, or logind).
    static func open() async throws -> LogindConnection {
        try await NIOThreadPool.singleton.runIfActive {
            var error = [CChar](repeating: 0, count: 512)
            guard let handle = iotkube_logind_open(&error, error.count) else { throw LogindError(Self.text(error)) }
            return LogindConnection(handle: handle)
        }
    }

    /// logind's InhibitDelayMaxSec, in whole seconds.
    func inhibitDelayMaxSeconds() async throws -> Int64 {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var error = [CChar](repeating: 0, count: 512)
            let microseconds = iotkube_logind_inhibit_delay_max(handle, &error, error.count)
            guard microseconds >= 0 else { throw LogindError(Self.text(error)) }
            return microseconds / 1_000_000
        }
    }

    /// Whether a shutdown is under way (logind's PreparingForShutdown).
    func preparingForShutdown() async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var error = [CChar](repeating: 0, count: 512)
            let preparing = iotkube_logind_preparing_for_shutdown(handle, &error, error.count)
            guard preparing >= 0 else { throw LogindError(Self.text(error)) }
            return preparing == 1
        }
    }

    /// Takes a delay lock on shutdown: its descriptor, which releases the lock when closed (it
    /// outlives this connection: logind keeps the lock across its own restarts).
    func inhibit() async throws -> Int32 {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var error = [CChar](repeating: 0, count: 512)
            let descriptor = iotkube_logind_inhibit(handle, "iotkube-agent", "iotkube-agent stops its pods before the node shuts down", &error, error.count)
            guard descriptor >= 0 else { throw LogindError(Self.text(error)) }
            return descriptor
        }
    }

    /// What logind said since the last look (without waiting).
    func poll() async throws -> Signal {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var error = [CChar](repeating: 0, count: 512)
            switch iotkube_logind_wait(handle, 0, &error, error.count) {
            case 1: return .shutdownBegins
            case 0: return .shutdownCancelled
            case 2: return .none
            case 3: return .more
            default: throw LogindError(Self.text(error))
            }
        }
    }

    deinit { iotkube_logind_close(handle) }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The delay lock's descriptor while one is held (one task uses it).
final class InhibitorLock: @unchecked Sendable {
    private(set) var descriptor: Int32 = -1

    var isHeld: Bool { descriptor >= 0 }

    func hold(_ descriptor: Int32) {
        release()
        self.descriptor = descriptor
    }

    /// Lets a shutdown go on.
    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}

/// logind could not be used, with the reason.
struct LogindError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
