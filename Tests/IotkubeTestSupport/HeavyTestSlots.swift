import Foundation

/// A few slots for the tests that load the whole machine (virtual machines under software
/// emulation, whole boards with a server, an agent and containers, request floods): one per
/// processor, taken in arrival order. With every suite started at once on a 2-core CI machine,
/// three VMs and several boards together starve each other past any sane deadline.
public actor HeavyTestSlots {
    public static let shared = HeavyTestSlots(width: max(1, ProcessInfo.processInfo.activeProcessorCount))

    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Slots for `width` tests at once.
    public init(width: Int) { free = width }

    /// Tests waiting for a slot.
    public var waitingCount: Int { waiting.count }

    /// Waits for a free slot.
    public func acquire() async {
        if free > 0 { free -= 1; return }
        await withCheckedContinuation { waiting.append($0) }
    }

    /// Hands the slot to the longest waiter, or frees it.
    public func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
