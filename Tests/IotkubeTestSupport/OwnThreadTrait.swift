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
        // A task that prefers the executor starts on it (a preference set on the running task
        // applies only from its next enqueue, which a test may never make before it blocks).
        // The test's task-local values (its identity, for recording issues) go with it.
        // The task ends before this returns, so `function` does not outlive the call.
        try await withoutActuallyEscaping(function) { function in
            let body = Task(executorPreference: executor) { try await function() }
            try await withTaskCancellationHandler { try await body.value } onCancel: { body.cancel() }
        }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// Each test runs on a thread of its own.
    public static var ownThread: Self { OwnThreadTrait() }
}
