

extension JSONValue {
    /// The value at a path of object keys, or nil.
    public subscript(path path: [String]) -> JSONValue? {
        var current: JSONValue? = self
        for key in path { current = current?[key] }
        return current
    }

    /// Sets (or removes, with nil) the value at a path of object keys, creating objects on the way.
    public mutating func set(_ path: [String], _ value: JSONValue?) {
        guard let first = path.first else {
            if let value { self = value }
            return
        }
        var object = objectValue ?? JSONObject()
        if path.count == 1 {
            object[first] = value
        } else {
            var child = object[first] ?? .object(JSONObject())
            child.set(Array(path.dropFirst()), value)
            object[first] = child
        }
        self = .object(object)
    }

    /// The integer at a path, or nil.
    public func int64(at path: [String]) -> Int64? {
        if case .number(let literal)? = self[path: path] { return Int64(literal) }
        return nil
    }

    /// The string at a path, or nil.
    public func string(at path: [String]) -> String? { self[path: path]?.stringValue }
}
