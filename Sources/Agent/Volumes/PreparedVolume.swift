/// A pod volume ready to be mounted into its containers.
public struct PreparedVolume: Sendable, Equatable {
    /// Where it is on the node (for hostPath: the agent's bind mount of the opened path).
    public var path: String
    /// configMap, secret, downwardAPI and projected: the agent writes them, containers only read.
    public var apiData: Bool

    public init(path: String, apiData: Bool = false) {
        self.path = path
        self.apiData = apiData
    }
}
