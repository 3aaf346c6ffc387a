#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import IotkubeTestSupport
import Synchronization
import SystemSupport
import Testing

private let interruptions = Atomic<Int>(0)

/// Reads and writes that a signal interrupts (EINTR: a handler installed without SA_RESTART,
/// as libraries and systemd's own code do) go on where they stopped.
@Suite(.ownThread, .serialized) struct SystemCallTests {
    /// Installs a SIGUSR2 handler without SA_RESTART for `body`; `interrupt()` sends the signal
    /// to the calling thread `times` times, 100 ms apart, from another thread, then runs `then`.
    static func withInterruptions<T>(_ body: (_ interrupt: @escaping @Sendable (_ times: Int, _ then: @escaping @Sendable () -> Void) -> Void) throws -> T) rethrows -> T {
        var action = sigaction(), previous = sigaction()
        action.__sigaction_handler.sa_handler = { _ in interruptions.add(1, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR2, &action, &previous)
        defer { sigaction(SIGUSR2, &previous, nil) }
        // Threads started from dispatch's inherit its blocked signals.
        var usr2 = sigset_t(), mask = sigset_t()
        sigemptyset(&usr2)
        sigaddset(&usr2, SIGUSR2)
        pthread_sigmask(SIG_UNBLOCK, &usr2, &mask)
        defer { pthread_sigmask(SIG_SETMASK, &mask, nil) }
        let target = pthread_self()
        return try body { times, then in
            Thread.detachNewThread {
                for _ in 0..<times {
                    usleep(100_000)
                    pthread_kill(target, SIGUSR2)
                }
                usleep(100_000)
                then()
            }
        }
    }

    @Test func aReadGoesOnAfterSignals() throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        let writer = ends[1]
        let before = interruptions.load(ordering: .relaxed)
        let bytes = try Self.withInterruptions { interrupt in
            interrupt(5) {
                _ = "after five signals".withCString { write(writer, $0, strlen($0)) }
                close(writer)
            }
            return try SystemCall.readAll(ends[0], path: "the test pipe")
        }
        close(ends[0])
        #expect(String(decoding: bytes, as: UTF8.self) == "after five signals")
        #expect(interruptions.load(ordering: .relaxed) - before == 5)
    }

    @Test func aWriteIntoAFullPipeGoesOnAfterSignals() throws {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        let reader = ends[0]
        let payload = [UInt8](repeating: 0x61, count: 1 << 20)
        let received = Mutex<[UInt8]>([])
        let drained = DispatchSemaphore(value: 0)
        let before = interruptions.load(ordering: .relaxed)
        try Self.withInterruptions { interrupt in
            // The pipe holds 64 KiB: the write blocks until the signals are sent and the reader starts.
            interrupt(5) {
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                    if count <= 0 { break }
                    received.withLock { $0 += chunk[..<count] }
                }
                drained.signal()
            }
            try SystemCall.writeAll(ends[1], payload, path: "the test pipe")
        }
        close(ends[1])
        drained.wait()
        close(reader)
        #expect(received.withLock { $0 } == payload)
        #expect(interruptions.load(ordering: .relaxed) - before == 5)
    }
}
