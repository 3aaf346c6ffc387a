import KubeModel
import Logging
import NIOCore
import NIOPosix
import PodNetwork
import ServiceLifecycle
import Synchronization

/// The cluster DNS on the node: answers cluster names from the service catalog (so it keeps
/// answering while the API is unreachable) and forwards every other name to the node's own
/// resolvers. Listens on UDP at `address`:53, an address on the node that pods' resolv.conf
/// names (a link-local one by default, added to the loopback interface).
public struct ClusterDNSServer: Service {
    /// The address pods are given when agent.yaml names no clusterDNS (NodeLocal DNSCache's).
    public static let defaultAddress = "169.254.20.10"
    /// Forwarded queries in flight at most, and from one client address; more are answered
    /// SERVFAIL (a flood from one pod cannot tie up the agent or starve the others).
    static let maxForwards = 128
    static let maxForwardsPerClient = 16

    let address: String
    let port: Int
    let domain: String
    let catalog: ServiceCatalog
    let upstreams: @Sendable () -> [String]
    let upstreamPort: Int
    let logger: Logger
    let records: RecordsCache

    public init(address: String, port: Int = 53, domain: String, catalog: ServiceCatalog, upstreams: @escaping @Sendable () -> [String], upstreamPort: Int = 53, logger: Logger) {
        self.upstreamPort = upstreamPort
        self.address = address
        self.port = port
        self.domain = domain
        self.catalog = catalog
        self.upstreams = upstreams
        self.logger = logger
        records = RecordsCache()
    }

    public func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                // Ending without being asked to is a failure too (the channel closed): serve again.
                try await cancelWhenGracefulShutdown { try await serve() }
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                failures = 0
                logger.warning("cluster DNS on \(address):\(port) stopped: serving again")
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                failures += 1
                if failures == 1 || failures % 20 == 0 { logger.error("cluster DNS on \(address):\(port): \(error) (retrying)") }
                let delay = Duration.seconds(min(30, failures))
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
    }

    private func serve() async throws {
        if address == Self.defaultAddress { try NodeLocalAddress.add(address) }
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096))
            .bind(host: address, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("cluster DNS listening on \(address):\(port) for \(domain)")
        let inFlight = ForwardCount()
        try await channel.executeThenClose { inbound, outbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await envelope in inbound {
                    let query = Array(envelope.data.readableBytesView)
                    let client = envelope.remoteAddress
                    // Never answer a response (QR set) or a DNS, echo or chargen port: no reply loops.
                    if query.count >= 3, query[2] & 0x80 != 0 { continue }
                    if let sourcePort = client.port, [7, 19, 53].contains(sourcePort) { continue }
                    if let reply = localAnswer(query) {
                        // Empty: not even a header to answer (dropped).
                        if !reply.isEmpty { try await outbound.write(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: reply))) }
                        continue
                    }
                    let source = client.ipAddress ?? ""
                    guard inFlight.take(source) else {
                        if let failure = failureAnswer(query) { try await outbound.write(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: failure))) }
                        continue
                    }
                    group.addTask {
                        defer { inFlight.release(source) }
                        let reply = await forward(query) ?? failureAnswer(query)
                        if let reply { try? await outbound.write(AddressedEnvelope(remoteAddress: client, data: ByteBuffer(bytes: reply))) }
                    }
                }
            }
        }
    }

    /// The reply to a cluster name or a malformed query; nil: forward it; empty: drop it.
    func localAnswer(_ bytes: [UInt8]) -> [UInt8]? {
        guard let query = try? DNSMessage(query: bytes) else {
            // Answered FORMERR when at least the header can be echoed, else dropped.
            guard bytes.count >= 12 else { return [] }
            return Array(bytes[0..<2]) + [0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]
        }
        let current = records.current(catalog: catalog, domain: domain)
        guard current.isCluster(query.name) else { return nil }
        let (code, answers) = current.answer(name: query.name, type: query.type)
        return query.response(code: code, answers: answers, authoritative: true)
    }

    private func failureAnswer(_ bytes: [UInt8]) -> [UInt8]? {
        (try? DNSMessage(query: bytes))?.response(code: .serverFailure, answers: [], authoritative: false)
    }

    /// Sends the query to each upstream in turn (2 s each) and returns the first reply with the same id.
    private func forward(_ query: [UInt8]) async -> [UInt8]? {
        for upstream in upstreams().prefix(3) where upstream != address || upstreamPort != port {
            do {
                let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65536))
                    .connect(host: upstream, port: upstreamPort) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                        }
                    }
                let reply: [UInt8]? = try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: upstream, port: upstreamPort), data: ByteBuffer(bytes: query)))
                    return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                        group.addTask {
                            for try await envelope in inbound {
                                let bytes = Array(envelope.data.readableBytesView)
                                if bytes.count >= 12, bytes[0] == query[0], bytes[1] == query[1] { return bytes }
                            }
                            return nil
                        }
                        group.addTask {
                            try await Task.sleep(for: .seconds(2))
                            return nil
                        }
                        let first = try await group.next() ?? nil
                        group.cancelAll()
                        return first
                    }
                }
                if let reply { return reply }
            } catch {
                continue
            }
        }
        return nil
    }
}

/// The cluster's records, rebuilt when the catalog changed since they were built.
final class RecordsCache: Sendable {
    private let state = Mutex<(generation: UInt64, records: ClusterDNSRecords?)>((0, nil))

    func current(catalog: ServiceCatalog, domain: String) -> ClusterDNSRecords {
        let generation = catalog.generation
        if let records = state.withLock({ $0.generation == generation ? $0.records : nil }) { return records }
        let (services, slices) = catalog.snapshot()
        let records = ClusterDNSRecords(services: services, slices: slices, domain: domain)
        state.withLock { $0 = (generation, records) }
        return records
    }
}

/// Forwarded queries in flight, in all and per client address.
private final class ForwardCount: Sendable {
    private let state = Mutex<(total: Int, byClient: [String: Int])>((0, [:]))

    /// Takes a slot for `client`; false when it or everyone has too many.
    func take(_ client: String) -> Bool {
        state.withLock { state in
            guard state.total < ClusterDNSServer.maxForwards, state.byClient[client, default: 0] < ClusterDNSServer.maxForwardsPerClient else { return false }
            state.total += 1
            state.byClient[client, default: 0] += 1
            return true
        }
    }

    func release(_ client: String) {
        state.withLock { state in
            state.total -= 1
            let left = state.byClient[client, default: 1] - 1
            state.byClient[client] = left > 0 ? left : nil
        }
    }
}
