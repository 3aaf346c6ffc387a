import KubeModel

/// An RFC 6901 JSON Pointer, for JSON Patch.
struct JSONPointer {
    var tokens: [String]

    /// How many levels below the document's root the pointer reaches.
    var depth: Int { tokens.count }

    init(_ text: String) throws {
        guard text.isEmpty || text.hasPrefix("/") else { throw APIError.badRequest("invalid JSON pointer \"\(text)\"") }
        tokens = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            String($0).replacingAll("~1", with: "/").replacingAll("~0", with: "~")
        }
    }

    func value(in document: JSONValue) throws -> JSONValue {
        var current = document
        for token in tokens {
            switch current {
            case .object(let object):
                guard let next = object[token] else { throw missing() }
                current = next
            case .array(let items):
                guard let index = Int(token), items.indices.contains(index) else { throw missing() }
                current = items[index]
            default: throw missing()
            }
        }
        return current
    }

    func adding(_ value: JSONValue, to document: JSONValue) throws -> JSONValue {
        try modify(document, tokens[...]) { parent, last in
            switch parent {
            case .object(var object):
                object[last] = value
                return .object(object)
            case .array(var items):
                if last == "-" { items.append(value) } else {
                    guard let index = Int(last), index >= 0, index <= items.count else { throw missing() }
                    items.insert(value, at: index)
                }
                return .array(items)
            default: throw missing()
            }
        }
    }

    func removing(from document: JSONValue) throws -> JSONValue {
        try modify(document, tokens[...]) { parent, last in
            switch parent {
            case .object(var object):
                guard object[last] != nil else { throw missing() }
                object[last] = nil
                return .object(object)
            case .array(var items):
                guard let index = Int(last), items.indices.contains(index) else { throw missing() }
                items.remove(at: index)
                return .array(items)
            default: throw missing()
            }
        }
    }

    private func modify(_ node: JSONValue, _ rest: ArraySlice<String>, _ change: (JSONValue, String) throws -> JSONValue) throws -> JSONValue {
        guard let first = rest.first else { throw APIError.badRequest("a JSON patch cannot replace the whole document") }
        if rest.count == 1 { return try change(node, first) }
        switch node {
        case .object(var object):
            guard let child = object[first] else { throw missing() }
            object[first] = try modify(child, rest.dropFirst(), change)
            return .object(object)
        case .array(var items):
            guard let index = Int(first), items.indices.contains(index) else { throw missing() }
            items[index] = try modify(items[index], rest.dropFirst(), change)
            return .array(items)
        default: throw missing()
        }
    }

    private func missing() -> APIError {
        APIError(code: 422, reason: "Invalid", message: "JSON patch path /\(tokens.joined(separator: "/")) does not exist")
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        splitting(on: target).joined(separator: replacement)
    }
}
