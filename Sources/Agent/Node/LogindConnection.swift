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
    /// The inhibitor lock's descriptor while one is held.
    private(set) var lock: Int32 = -1

    /// What came from logind since the last look.
    enum Signal: Equatable { case none, shutdownBegins, shutdownCancelled }

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

    /// Takes the delay lock on shutdown (nothing when one is held).
    func inhibit() async throws {
        guard lock < 0 else { return }
        lock = try await NIOThreadPool.singleton.runIfActive { [self] in
            var error = [CChar](repeating: 0, count: 512)
            let descriptor = iotkube_logind_inhibit(handle, "iotkube-agent", "iotkube-agent stops its pods before the node shuts down", &error, error.count)
            guard descriptor >= 0 else { throw LogindError(Self.text(error)) }
            return descriptor
        }
    }

    /// Lets the shutdown go on (closing the lock's descriptor releases it).
    func release() {
        guard lock >= 0 else { return }
        close(lock)
        lock = -1
    }

    /// What logind said since the last look (without waiting).
    func poll() async throws -> Signal {
        try await NIOThreadPool.singleton.runIfActive { [self] in
            var error = [CChar](repeating: 0, count: 512)
            switch iotkube_logind_wait(handle, 0, &error, error.count) {
            case 1: return .shutdownBegins
            case 0: return .shutdownCancelled
            case 2: return .none
            default: throw LogindError(Self.text(error))
            }
        }
    }

    deinit {
        release()
        iotkube_logind_close(handle)
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// logind could not be used, with the reason.
struct LogindError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
