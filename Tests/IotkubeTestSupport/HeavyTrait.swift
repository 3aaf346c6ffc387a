import Testing

/// Each test of the suite runs only while it holds one of the ``HeavyTestSlots``.
public struct HeavyTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard testCase != nil else { try await function(); return }
        await HeavyTestSlots.shared.acquire()
        do {
            try await function()
        } catch {
            await HeavyTestSlots.shared.release()
            throw error
        }
        await HeavyTestSlots.shared.release()
    }
}

extension Trait where Self == HeavyTrait {
    /// The test loads the whole machine: it waits for one of the few heavy-test slots.
    public static var heavy: Self { HeavyTrait() }
}
