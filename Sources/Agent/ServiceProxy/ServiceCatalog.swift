import KubeModel
import Synchronization

/// The services and endpoint slices this node knows, as its watches last saw them: what the
/// service proxy programs and the cluster DNS answers from. Kept while the API is unreachable
/// (an offline board keeps its rules and names). Bounded: a flood of objects from the API
/// cannot grow the agent without limit.
public final class ServiceCatalog: Sendable {
    public static let maxServices = 10_000
    public static let maxSlices = 20_000

    struct State {
        var services: [String: KubeService] = [:]
        var slices: [String: EndpointSlice] = [:]
        var listedServices = false
        var listedSlices = false
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    private let signal: AsyncStream<Void>.Continuation
    /// Wakes the consumer after changes (several changes make one wake-up).
    public let changes: AsyncStream<Void>

    public init() {
        (changes, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Whether both kinds were listed at least once (before that nothing is programmed: the
    /// rules of a previous run stay until the catalog is complete).
    public var isComplete: Bool { state.withLock { $0.listedServices && $0.listedSlices } }
    /// Counts changes, so a consumer can tell whether anything moved.
    public var generation: UInt64 { state.withLock { $0.generation } }

    public func snapshot() -> (services: [KubeService], slices: [EndpointSlice]) {
        state.withLock { (Array($0.services.values), Array($0.slices.values)) }
    }

    /// What a checkpoint held: answered by the DNS until the API lists afresh (the catalog is
    /// not complete by it, so the proxy keeps the kernel's rules meanwhile).
    public func restore(services: [KubeService], slices: [EndpointSlice]) {
        state.withLock { state in
            guard !state.listedServices, !state.listedSlices else { return }
            state.services = Dictionary(services.prefix(Self.maxServices).map { (Self.key($0.metadata), $0) }, uniquingKeysWith: { $1 })
            state.slices = Dictionary(slices.prefix(Self.maxSlices).map { (Self.key($0.metadata), $0) }, uniquingKeysWith: { $1 })
            state.generation &+= 1
        }
    }

    /// Wakes the consumer without a change (to try again after a failure).
    public func poke() { signal.yield() }

    /// Replaces every service (a fresh list). Returns how many were left out over the bound.
    @discardableResult
    public func replaceServices(_ services: [KubeService]) -> Int {
        let kept = services.prefix(Self.maxServices)
        state.withLock { state in
            state.services = Dictionary(kept.map { (Self.key($0.metadata), $0) }, uniquingKeysWith: { $1 })
            state.listedServices = true
            state.generation &+= 1
        }
        signal.yield()
        return services.count - kept.count
    }

    @discardableResult
    public func replaceSlices(_ slices: [EndpointSlice]) -> Int {
        let kept = slices.prefix(Self.maxSlices)
        state.withLock { state in
            state.slices = Dictionary(kept.map { (Self.key($0.metadata), $0) }, uniquingKeysWith: { $1 })
            state.listedSlices = true
            state.generation &+= 1
        }
        signal.yield()
        return slices.count - kept.count
    }

    /// A watch event for a service: added or modified (`present`), or deleted. Returns false
    /// when it was dropped over the bound.
    @discardableResult
    public func update(_ service: KubeService, present: Bool) -> Bool {
        let accepted = state.withLock { state -> Bool in
            let key = Self.key(service.metadata)
            if present, state.services[key] == nil, state.services.count >= Self.maxServices { return false }
            state.services[key] = present ? service : nil
            state.generation &+= 1
            return true
        }
        signal.yield()
        return accepted
    }

    @discardableResult
    public func update(_ slice: EndpointSlice, present: Bool) -> Bool {
        let accepted = state.withLock { state -> Bool in
            let key = Self.key(slice.metadata)
            if present, state.slices[key] == nil, state.slices.count >= Self.maxSlices { return false }
            state.slices[key] = present ? slice : nil
            state.generation &+= 1
            return true
        }
        signal.yield()
        return accepted
    }

    static func key(_ metadata: ObjectMeta) -> String { "\(metadata.namespace ?? "")/\(metadata.name ?? "")" }
}
