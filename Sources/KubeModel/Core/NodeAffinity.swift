/// A pod's required node affinity (`affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`):
/// the node must match one of the terms; a term matches when all its expressions and fields do.
public struct NodeSelector: Codable, Sendable, Hashable {
    public var nodeSelectorTerms: [NodeSelectorTerm] = []
    public var unknownFields = UnknownFields()

    public init(nodeSelectorTerms: [NodeSelectorTerm]) { self.nodeSelectorTerms = nodeSelectorTerms }

    /// The required node selector of a pod's affinity, if it has one. One that cannot be read
    /// matches no node: a constraint is never dropped for being malformed.
    public static func required(by affinity: JSONValue?) -> NodeSelector? {
        guard let tree = affinity?[path: ["nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"]], tree != .null else { return nil }
        return (try? KubeJSON.decode(NodeSelector.self, from: tree)) ?? NodeSelector(nodeSelectorTerms: [])
    }

    /// Whether a node with these labels and this name matches (an empty term matches nothing).
    public func matches(labels: [String: String], name: String) -> Bool {
        nodeSelectorTerms.contains { $0.matches(labels: labels, name: name) }
    }
}

/// One term of a node selector: label expressions and field expressions (`metadata.name`).
public struct NodeSelectorTerm: Codable, Sendable, Hashable {
    public var matchExpressions: [NodeSelectorRequirement]?
    public var matchFields: [NodeSelectorRequirement]?
    public var unknownFields = UnknownFields()

    public init(matchExpressions: [NodeSelectorRequirement]? = nil, matchFields: [NodeSelectorRequirement]? = nil) {
        self.matchExpressions = matchExpressions
        self.matchFields = matchFields
    }

    func matches(labels: [String: String], name: String) -> Bool {
        let expressions = matchExpressions ?? []
        let fields = matchFields ?? []
        if expressions.isEmpty && fields.isEmpty { return false }
        return expressions.allSatisfy { $0.matches(labels[$0.key]) }
            && fields.allSatisfy { $0.key == "metadata.name" && $0.matches(name) }
    }
}

/// `key operator values`: In, NotIn, Exists, DoesNotExist, Gt and Lt (one integer value).
public struct NodeSelectorRequirement: Codable, Sendable, Hashable {
    public var key: String = ""
    public var `operator`: String = ""
    public var values: [String]?
    public var unknownFields = UnknownFields()

    public init(key: String, operator: String, values: [String]? = nil) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    func matches(_ value: String?) -> Bool {
        let values = self.values ?? []
        switch self.operator {
        case "In": return value.map(values.contains) ?? false
        case "NotIn": return !(value.map(values.contains) ?? false)
        case "Exists": return value != nil
        case "DoesNotExist": return value == nil
        case "Gt", "Lt":
            guard values.count == 1, let bound = Int64(values[0]), let actual = value.flatMap({ Int64($0) }) else { return false }
            return self.operator == "Gt" ? actual > bound : actual < bound
        default: return false
        }
    }
}
