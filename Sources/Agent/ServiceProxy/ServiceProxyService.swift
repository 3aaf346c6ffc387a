import KubeClient
import KubeModel
import Logging
import PodNetwork
import ServiceLifecycle
import Synchronization

/// The node's service proxy (kube-proxy's role, in its nftables mode): watches Services and
/// EndpointSlices through the Kubernetes API (so it works against any API server), and after
/// changes programs the kernel with one nftables transaction holding only the difference (or,
/// without nftables, one iptables-restore of the whole rule set).
/// Changes are batched (`minimumInterval`). While the API is unreachable the rules stay as
/// they are; they go with `iotkube-agent reset`.
public struct ServiceProxyService: Service {
    let nodeName: String
    let client: @Sendable () -> KubeAPIClient?
    let catalog: ServiceCatalog
    let backend: ServiceProxyBackend
    /// Node ports never programmed (the agent's own port, the API server's).
    let reservedNodePorts: Set<Int32>
    let logger: Logger
    let minimumInterval: Duration
    /// Where the catalog is kept for restarts without the API (nil: not kept).
    let checkpointPath: String?
    let checkpointInterval: Duration

    public init(nodeName: String, client: @escaping @Sendable () -> KubeAPIClient?, catalog: ServiceCatalog, backend: ServiceProxyBackend, reservedNodePorts: Set<Int32> = [], logger: Logger,
                minimumInterval: Duration = .milliseconds(100), checkpointPath: String? = nil, checkpointInterval: Duration = .seconds(60)) {
        self.checkpointPath = checkpointPath
        self.checkpointInterval = checkpointInterval
        self.nodeName = nodeName
        self.client = client
        self.catalog = catalog
        self.backend = backend
        self.reservedNodePorts = reservedNodePorts
        self.logger = logger
        self.minimumInterval = minimumInterval
    }

    public func run() async throws {
        for problem in NFTablesProxy.prepareKernel() { logger.warning("service proxy: cannot set \(problem); pods may not reach services on this node") }
        backend.removeOtherLeftovers()
        if let checkpointPath {
            do {
                let (services, slices) = try ServiceCatalogCheckpoint(path: checkpointPath).load()
                catalog.restore(services: services, slices: slices)
            } catch {
                logger.warning("service proxy: \(error)")
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let checkpointPath { group.addTask { await keepCheckpoint(checkpointPath) } }
            group.addTask { await ServiceWatch(kind: "services", client: client, logger: logger).run(KubeService.self, replace: { catalog.replaceServices($0) }, update: { catalog.update($0, present: $1) }) }
            group.addTask { await ServiceWatch(kind: "endpoint slices", client: client, logger: logger).run(EndpointSlice.self, replace: { catalog.replaceSlices($0) }, update: { catalog.update($0, present: $1) }) }
            let failed = FailureFlag()
            group.addTask { await programLoop(failed) }
            group.addTask {
                // A failed programming (the table changed under the agent, a full disk for nft's
                // cache) is tried again every 5 s, not only at the next change.
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(5)) }
                    if failed.value.load(ordering: .relaxed) { catalog.poke() }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }

    /// Writes the catalog once it is complete, then at most every `checkpointInterval` when it
    /// changed (and once more at shutdown).
    private func keepCheckpoint(_ path: String) async {
        var checkpoint = ServiceCatalogCheckpoint(path: path)
        var written: UInt64?
        var lastWrite: ContinuousClock.Instant?
        while true {
            let generation = catalog.generation
            let stopping = Task.isShuttingDownGracefully || Task.isCancelled
            let due = lastWrite.map { ContinuousClock.now - $0 >= checkpointInterval } ?? true
            if catalog.isComplete, generation != written, due || stopping {
                let (services, slices) = catalog.snapshot()
                do {
                    try checkpoint.save(services: services, slices: slices)
                    written = generation
                    lastWrite = .now
                } catch {
                    logger.warning("service proxy: writing \(path): \(error)")
                }
            }
            if stopping { return }
            // A look a second while something waits to be written; else every 5 s (an idle
            // board's agent wakes for little; the shutdown ends the pause and writes at once).
            let pending = catalog.generation != written
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pending ? .seconds(1) : .seconds(5)) }
        }
    }

    /// Programs the rules after each batch of changes, once the catalog is complete.
    private func programLoop(_ failed: FailureFlag) async {
        var tables = backend
        var failing = false
        for await _ in catalog.changes.cancelOnGracefulShutdown() {
            guard catalog.isComplete else { continue }
            let (services, slices) = catalog.snapshot()
            let ports = ProxiedServicePort.build(services: services, slices: slices, nodeName: nodeName, reservedNodePorts: reservedNodePorts)
            do {
                let bytes = try tables.apply(ports)
                if failing { logger.notice("service proxy: rules programmed again (\(ports.count) service ports)") }
                if bytes > 0 { logger.debug("service proxy: \(ports.count) service ports, \(bytes) bytes to \(tables.name)") }
                failing = false
            } catch {
                if !failing { logger.error("service proxy: \(error) (trying again every 5 s)") }
                failing = true
            }
            failed.value.store(failing, ordering: .relaxed)
            try? await Task.sleep(for: minimumInterval)
        }
    }
}

/// A list then a watch of one kind across all namespaces, resumed from the last version seen
/// (listing again on 410 Gone), with capped back-off while the API cannot be reached.
struct ServiceWatch {
    let kind: String
    let client: @Sendable () -> KubeAPIClient?
    let logger: Logger

    func run<T: KubeObject>(_ type: T.Type, replace: @escaping @Sendable ([T]) -> Int, update: @escaping @Sendable (T, Bool) -> Bool) async {
        var backoff = Backoff()
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            guard let client = client() else { return }
            do {
                let list = try await client.list(T.self)
                let dropped = replace(list.items)
                if dropped > 0 { logger.warning("service proxy: \(dropped) \(kind) over the limit are ignored") }
                if failures > 0 { logger.notice("service proxy: \(kind) watch reconnected after \(failures) failures") }
                failures = 0
                backoff.reset()
                let version = VersionBox(list.metadata.resourceVersion ?? "0")
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    let from = version.value
                    try await cancelWhenGracefulShutdown {
                        try await client.watch(T.self, resourceVersion: from, timeoutSeconds: 300) { event in
                            guard let object = event.object else { return }
                            if let next = object.metadata.resourceVersion { version.value = next }
                            switch event.type {
                            case .added, .modified: _ = update(object, true)
                            case .deleted: _ = update(object, false)
                            case .bookmark, .error: break
                            }
                        }
                    }
                }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                if (error as? KubeClientError)?.statusCode == 410 { continue }
                failures += 1
                if failures == 1 || failures % 10 == 0 { logger.warning("service proxy: \(kind): \(error) (keeping the last known rules; retrying)") }
                let delay = backoff.next()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
    }
}

/// The last resource version a watch saw.
private final class VersionBox: Sendable {
    private let storage: Mutex<String>

    init(_ value: String) { storage = Mutex(value) }

    var value: String {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Whether the last programming failed.
private final class FailureFlag: Sendable {
    let value = Atomic<Bool>(false)
}
