import KubeModel
import SystemSupport

/// The service catalog kept on the board's storage, so the cluster DNS answers cluster names
/// after an agent restart while the API is unreachable. Written atomically, at most once per
/// interval and only when the catalog changed (an SD card is not written per change).
public struct ServiceCatalogCheckpoint: Sendable {
    public let path: String
    private var lastWritten: [UInt8]?

    public init(path: String) { self.path = path }

    /// What the file holds; a missing file is empty, a damaged one an error naming it.
    public func load() throws -> (services: [KubeService], slices: [EndpointSlice]) {
        guard let bytes = try AtomicFile.read(path) else { return ([], []) }
        do {
            let tree = try KubeJSON.parse(bytes)
            let services = try (tree["services"]?.arrayValue ?? []).prefix(ServiceCatalog.maxServices).map { try KubeJSON.decode(KubeService.self, from: $0) }
            let slices = try (tree["slices"]?.arrayValue ?? []).prefix(ServiceCatalog.maxSlices).map { try KubeJSON.decode(EndpointSlice.self, from: $0) }
            return (services, slices)
        } catch {
            throw ProvisioningError("service checkpoint \(path) is damaged (\(error)); remove it and the agent starts from the API's services")
        }
    }

    /// Writes the catalog when it differs from the file; true when written.
    @discardableResult
    public mutating func save(services: [KubeService], slices: [EndpointSlice]) throws -> Bool {
        let sortedServices = services.sorted { ServiceCatalog.key($0.metadata) < ServiceCatalog.key($1.metadata) }
        let sortedSlices = slices.sorted { ServiceCatalog.key($0.metadata) < ServiceCatalog.key($1.metadata) }
        let tree: JSONValue = ["services": .array(try sortedServices.map { try KubeJSON.tree($0) }), "slices": .array(try sortedSlices.map { try KubeJSON.tree($0) })]
        let bytes = KubeJSON.serialize(tree)
        if lastWritten == nil { lastWritten = try AtomicFile.read(path) }
        guard bytes != lastWritten else { return false }
        if let slash = path.lastIndex(of: "/") { try FileTree.makeDirectories(String(path[..<slash]), mode: 0o700) }
        try AtomicFile.write(bytes, to: path, mode: 0o600)
        lastWritten = bytes
        return true
    }
}
