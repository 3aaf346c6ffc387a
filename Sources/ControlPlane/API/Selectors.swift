import KubeModel

/// A label selector (`app=web,tier!=db,env in (a,b),!legacy,release`), matched against labels.
struct LabelQuery: Sendable {
    enum Requirement: Sendable {
        case equals(String, String)
        case notEquals(String, String)
        case isIn(String, Set<String>)
        case notIn(String, Set<String>)
        case exists(String)
        case doesNotExist(String)
    }

    var requirements: [Requirement] = []

    init(parsing text: String) throws {
        for term in Self.splitTerms(text) where !term.isEmpty {
            requirements.append(try Self.requirement(term))
        }
    }

    func matches(_ labels: [String: String]) -> Bool {
        requirements.allSatisfy { requirement in
            switch requirement {
            case .equals(let key, let value): return labels[key] == value
            case .notEquals(let key, let value): return labels[key] != value
            case .isIn(let key, let values): return labels[key].map(values.contains) ?? false
            case .notIn(let key, let values): return !(labels[key].map(values.contains) ?? false)
            case .exists(let key): return labels[key] != nil
            case .doesNotExist(let key): return labels[key] == nil
            }
        }
    }

    /// Splits on commas outside parentheses.
    private static func splitTerms(_ text: String) -> [String] {
        var terms: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == "," && depth == 0 {
                terms.append(current.trimmingWhitespace())
                current = ""
            } else {
                current.append(character)
            }
        }
        terms.append(current.trimmingWhitespace())
        return terms
    }

    private static func requirement(_ term: String) throws -> Requirement {
        let invalid = APIError.badRequest("unable to parse requirement: invalid label selector term \"\(term)\"")
        if term.hasPrefix("!") { return .doesNotExist(String(term.dropFirst()).trimmingWhitespace()) }
        for (operatorText, isNegated) in [(" notin ", true), (" in ", false)] {
            if let range = term.firstRange(of: operatorText) {
                let key = String(term[..<range.lowerBound]).trimmingWhitespace()
                var list = String(term[range.upperBound...]).trimmingWhitespace()
                guard list.hasPrefix("("), list.hasSuffix(")") else { throw invalid }
                list = String(list.dropFirst().dropLast())
                let values = Set(list.split(separator: ",").map { String($0).trimmingWhitespace() })
                return isNegated ? .notIn(key, values) : .isIn(key, values)
            }
        }
        for (operatorText, kind) in [("!=", 0), ("==", 1), ("=", 1)] {
            if let range = term.firstRange(of: operatorText) {
                let key = String(term[..<range.lowerBound]).trimmingWhitespace()
                let value = String(term[range.upperBound...]).trimmingWhitespace()
                guard !key.isEmpty else { throw invalid }
                return kind == 0 ? .notEquals(key, value) : .equals(key, value)
            }
        }
        guard !term.contains(" ") else { throw invalid }
        return .exists(term)
    }
}

/// A field selector (`spec.nodeName=pi,status.phase!=Succeeded`) over the fields a resource supports.
struct FieldSelector: Sendable {
    var requirements: [(field: String, value: String, negated: Bool)] = []

    init(parsing text: String, resource: ResourceType) throws {
        for term in text.split(separator: ",").map(String.init) where !term.isEmpty {
            let negated = term.contains("!=")
            let parts = term.splitting(on: negated ? "!=" : (term.contains("==") ? "==" : "="))
            guard parts.count == 2 else { throw APIError.badRequest("invalid field selector: \"\(term)\"") }
            let field = parts[0].trimmingWhitespace()
            guard Self.supportedFields(resource).contains(field) else {
                throw APIError.badRequest("field label not supported: \(field)")
            }
            requirements.append((field, parts[1].trimmingWhitespace(), negated))
        }
    }

    static func supportedFields(_ resource: ResourceType) -> Set<String> {
        var fields: Set<String> = ["metadata.name", "metadata.namespace"]
        switch resource.plural {
        case "pods": fields.formUnion(["spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "status.podIP"])
        case "events": fields.formUnion(["involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid", "reason", "type", "source"])
        case "secrets": fields.insert("type")
        case "nodes": fields.insert("spec.unschedulable")
        case "namespaces": fields.insert("status.phase")
        case "certificatesigningrequests": fields.insert("spec.signerName")
        default: break
        }
        return fields
    }

    func matches(_ object: JSONValue) -> Bool {
        requirements.allSatisfy { requirement in
            let actual: String
            switch object[path: requirement.field.split(separator: ".").map(String.init)] {
            case .string(let text)?: actual = text
            case .bool(let flag)?: actual = flag ? "true" : "false"
            case .number(let literal)?: actual = literal
            default: actual = ""
            }
            return (actual == requirement.value) != requirement.negated
        }
    }
}

extension String {
    func splitting(on separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}
