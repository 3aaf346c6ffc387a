import Foundation

/// Runs blocking work (waiting for a process, building fixtures) on a thread of its own and
/// awaits it, so long waits do not hold one of the few Swift concurrency threads that other
/// tests' async code runs on (two on a 2-core machine). `body` must not record test issues.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

extension ServerProcess {
    /// ``run(_:_:input:timeout:)`` without blocking a concurrency thread.
    public static func runAsync(_ executable: String, _ arguments: [String], input: String? = nil, timeout: TimeInterval = 60) async throws -> (status: Int32, output: String) {
        try await onOwnThread { try run(executable, arguments, input: input, timeout: timeout) }
    }
}
