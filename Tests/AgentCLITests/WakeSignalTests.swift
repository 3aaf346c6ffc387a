import IotkubeTestSupport
import SystemSupport
import Testing

/// The wake-up call the pod workers and the status service sleep on. Each case would hang
/// (and hit the time limit) if the wait did not end the way it should.
@Suite(.ownThread, .timeLimit(.minutes(1)))
struct WakeSignalTests {
    @Test func aSignalBeforeTheWaitIsKept() async {
        let wake = WakeSignal()
        wake.signal()
        await wake.wait(upTo: .seconds(3600))
    }

    @Test func aSignalDuringTheWaitEndsIt() async throws {
        let wake = WakeSignal()
        let waiting = Task { await wake.wait(upTo: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        wake.signal()
        await waiting.value
        // The signal was used up: a short wait now runs to its end.
        await wake.wait(upTo: .milliseconds(10))
    }

    @Test func cancellationEndsTheWait() async throws {
        let wake = WakeSignal()
        let waiting = Task { await wake.wait(upTo: .seconds(3600)) }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await waiting.value
    }

    @Test func manyWaitsAndSignalsInterleaved() async {
        let wake = WakeSignal()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<200 { await wake.wait(upTo: .milliseconds(5)) }
            }
            group.addTask {
                for _ in 0..<200 {
                    wake.signal()
                    await Task.yield()
                }
            }
        }
    }
}
