/// A mutable JSON node under construction by ``TreeEncoder``; containers share it by reference.
final class NodeBuilder {
    private enum Content {
        case unset
        case value(JSONValue)
        case object(keys: [String], children: [String: NodeBuilder])
        case array([NodeBuilder])
    }

    private var content: Content = .unset

    func set(_ value: JSONValue) { content = .value(value) }

    /// Makes this node an object (keeping members already added) and returns the child for `key`.
    func child(forKey key: String) -> NodeBuilder {
        var (keys, children) = objectParts()
        if let existing = children[key] { return existing }
        let child = NodeBuilder()
        keys.append(key)
        children[key] = child
        content = .object(keys: keys, children: children)
        return child
    }

    /// Makes this node an object without adding members (so `{}` is written even when empty).
    func becomeObject() {
        let (keys, children) = objectParts()
        content = .object(keys: keys, children: children)
    }

    /// Makes this node an array and appends a new element.
    func appendElement() -> NodeBuilder {
        var elements = arrayElements()
        let child = NodeBuilder()
        elements.append(child)
        content = .array(elements)
        return child
    }

    /// Makes this node an array without adding elements.
    func becomeArray() { content = .array(arrayElements()) }

    var elementCount: Int { arrayElements().count }

    /// Adds the unknown members that typed fields did not already write.
    func merge(_ unknown: JSONObject) {
        var (keys, children) = objectParts()
        for member in unknown where children[member.key] == nil {
            let child = NodeBuilder()
            child.set(member.value)
            keys.append(member.key)
            children[member.key] = child
        }
        content = .object(keys: keys, children: children)
    }

    func build() -> JSONValue {
        switch content {
        case .unset: return .object(JSONObject())
        case .value(let value): return value
        case .object(let keys, let children):
            var object = JSONObject()
            for key in keys { object.appendUnchecked(key, children[key]!.build()) }
            return .object(object)
        case .array(let elements): return .array(elements.map { $0.build() })
        }
    }

    private func objectParts() -> ([String], [String: NodeBuilder]) {
        switch content {
        case .object(let keys, let children): return (keys, children)
        case .value(.object(let object)):
            var children: [String: NodeBuilder] = [:]
            for member in object {
                let child = NodeBuilder()
                child.set(member.value)
                children[member.key] = child
            }
            return (object.keys, children)
        default: return ([], [:])
        }
    }

    private func arrayElements() -> [NodeBuilder] {
        switch content {
        case .array(let elements): return elements
        case .value(.array(let items)):
            return items.map { item in
                let child = NodeBuilder()
                child.set(item)
                return child
            }
        default: return []
        }
    }
}
