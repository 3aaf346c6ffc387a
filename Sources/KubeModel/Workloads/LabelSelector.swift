/// A label selector object (`metav1.LabelSelector`): every `matchLabels` pair and every
/// expression must hold. An empty selector matches everything; a nil one, nothing.
public struct LabelSelector: Codable, Sendable, Hashable {
    public var matchLabels: [String: String]?
    public var matchExpressions: [LabelSelectorRequirement]?
    public var unknownFields = UnknownFields()

    public init(matchLabels: [String: String]? = nil, matchExpressions: [LabelSelectorRequirement]? = nil) {
        self.matchLabels = matchLabels
        self.matchExpressions = matchExpressions
    }

    /// Whether the selector has no requirement (and so selects every object).
    public var isEmpty: Bool { (matchLabels ?? [:]).isEmpty && (matchExpressions ?? []).isEmpty }

    /// Whether `labels` satisfy every requirement. Unknown operators match nothing.
    public func matches(_ labels: [String: String]) -> Bool {
        for (key, value) in matchLabels ?? [:] where labels[key] != value { return false }
        for expression in matchExpressions ?? [] where !expression.matches(labels) { return false }
        return true
    }

    /// The selector as a query string (`app=web,tier in (a,b),!legacy`), requirements sorted by
    /// key as kube-apiserver prints them (the Scale subresource's `status.selector`).
    public var queryText: String {
        var terms: [(key: String, text: String)] = []
        for (key, value) in matchLabels ?? [:] { terms.append((key, "\(key)=\(value)")) }
        for expression in matchExpressions ?? [] {
            let values = (expression.values ?? []).sorted().joined(separator: ",")
            switch expression.operator {
            case "In": terms.append((expression.key, "\(expression.key) in (\(values))"))
            case "NotIn": terms.append((expression.key, "\(expression.key) notin (\(values))"))
            case "Exists": terms.append((expression.key, expression.key))
            case "DoesNotExist": terms.append((expression.key, "!\(expression.key)"))
            default: continue
            }
        }
        return terms.sorted { $0.key == $1.key ? $0.text < $1.text : $0.key < $1.key }.map(\.text).joined(separator: ",")
    }
}

/// One expression of a label selector: `key` `operator` (In, NotIn, Exists, DoesNotExist) `values`.
public struct LabelSelectorRequirement: Codable, Sendable, Hashable {
    public var key: String = ""
    public var `operator`: String = ""
    public var values: [String]?
    public var unknownFields = UnknownFields()

    public init(key: String, operator: String, values: [String]? = nil) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    func matches(_ labels: [String: String]) -> Bool {
        let values = self.values ?? []
        switch self.operator {
        case "In": return labels[key].map(values.contains) ?? false
        case "NotIn": return !(labels[key].map(values.contains) ?? false)
        case "Exists": return labels[key] != nil
        case "DoesNotExist": return labels[key] == nil
        default: return false
        }
    }
}
