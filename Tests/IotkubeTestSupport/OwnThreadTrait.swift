import Testing

/// Runs each test of a suite on a thread of its own (``ThreadTaskExecutor``): for suites whose
/// synchronous tests block (processes, containers, sleeps), which would otherwise hold one of
/// the two Swift concurrency threads of a 2-core machine and stall every other test's async code.
public struct OwnThreadTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { try await function(); return }
        let executor = ThreadTaskExecutor(name: test.name)
        defer { executor.shutdown() }
        try await withTaskExecutorPreference(executor) {
            // The preference applies from the task's next enqueue: without one, a test with no
            // suspension before its blocking work would run it all where it already is.
            await Task.yield()
            try await function()
        }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// Each test runs on a thread of its own.
    public static var ownThread: Self { OwnThreadTrait() }
}
