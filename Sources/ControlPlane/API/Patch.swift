import KubeModel

/// The patch formats the API accepts on PATCH.
enum PatchFormat {
    case merge
    case strategicMerge
    case apply
    case json

    init?(contentType: String) {
        let type = contentType.split(separator: ";").first.map { String($0).trimmingWhitespace().lowercased() } ?? ""
        switch type {
        case "application/merge-patch+json": self = .merge
        case "application/strategic-merge-patch+json": self = .strategicMerge
        case "application/apply-patch+yaml", "application/apply-patch+json", "application/apply-patch+cbor": self = .apply
        case "application/json-patch+json": self = .json
        default: return nil
        }
    }
}

/// JSON merge patch (RFC 7386) and Kubernetes strategic merge patch.
enum Patch {
    /// RFC 7386: objects merge member by member, `null` deletes, everything else replaces.
    static func merge(_ target: JSONValue?, _ patch: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target?.objectValue ?? JSONObject()
        for member in patchObject {
            if member.value == .null {
                result[member.key] = nil
            } else {
                result[member.key] = merge(result[member.key], member.value)
            }
        }
        return .object(result)
    }

    /// The merge key of lists that strategic merge patch merges element by element.
    static let mergeKeys: [String: String] = [
        "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name", "volumes": "name",
        "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name", "hostAliases": "ip",
        "ownerReferences": "uid", "conditions": "type", "addresses": "type", "containerStatuses": "name",
        "initContainerStatuses": "name", "resourceClaims": "name", "taints": "key", "readinessGates": "conditionType",
    ]
    /// The merge key of the list `field` holding `items`: a service's `ports` merge on their
    /// port and protocol (as server-side apply keys them: 53/UDP and 53/TCP are two ports), a
    /// container's on `containerPort`.
    static func mergeKey(_ field: String, _ items: [JSONValue]) -> String? {
        if field == "ports", !items.isEmpty, items.allSatisfy({ $0["containerPort"] == nil && $0["port"] != nil }) { return servicePortKey }
        return mergeKeys[field]
    }
    static let servicePortKey = "port+protocol"

    /// The value an element is matched on.
    static func keyValue(_ element: JSONValue, _ mergeKey: String) -> JSONValue? {
        guard mergeKey == servicePortKey else { return element[mergeKey] }
        guard let port = element["port"] else { return nil }
        return ["port": port, "protocol": element["protocol"] ?? "TCP"]
    }
    /// Lists of scalars merged as sets.
    static let setLists: Set<String> = ["finalizers"]

    /// Kubernetes strategic merge patch: like RFC 7386, but lists with a merge key merge by that
    /// key, `$patch: delete|replace` directives apply, and `$setElementOrder`/`$retainKeys`
    /// bookkeeping keys are honoured or stripped.
    static func strategicMerge(_ target: JSONValue?, _ patch: JSONValue) throws -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        if patchObject["$patch"] == "replace" {
            var replacement = patchObject
            replacement["$patch"] = nil
            return .object(replacement)
        }
        var result = target?.objectValue ?? JSONObject()
        var elementOrders: [String: [JSONValue]] = [:]
        for member in patchObject {
            let key = member.key
            if key.hasPrefix("$setElementOrder/") {
                if case .array(let order) = member.value { elementOrders[String(key.dropFirst("$setElementOrder/".count))] = order }
                continue
            }
            if key.hasPrefix("$deleteFromPrimitiveList/") {
                let field = String(key.dropFirst("$deleteFromPrimitiveList/".count))
                if case .array(let removed) = member.value, case .array(let items)? = result[field] {
                    result[field] = .array(items.filter { !removed.contains($0) })
                }
                continue
            }
            if key.hasPrefix("$") { continue }
            if member.value == .null {
                result[key] = nil
                continue
            }
            switch (result[key], member.value) {
            case (.array(let current)?, .array(let patchItems)):
                if let mergeKey = mergeKey(key, current + patchItems), patchItems.allSatisfy({ $0.objectValue != nil }) {
                    result[key] = .array(try mergeList(current, patchItems, by: mergeKey))
                } else if setLists.contains(key) {
                    result[key] = .array(current + patchItems.filter { !current.contains($0) })
                } else {
                    result[key] = .array(try patchItems.map { try strip($0) })
                }
            case (let current, .object):
                result[key] = try strategicMerge(current, member.value)
            default:
                result[key] = try strip(member.value)
            }
        }
        for (field, order) in elementOrders {
            guard case .array(let items)? = result[field], let mergeKey = mergeKey(field, items) else { continue }
            let position = Dictionary(order.enumerated().compactMap { index, element in keyValue(element, mergeKey).map { ($0, index) } }, uniquingKeysWith: { first, _ in first })
            result[field] = .array(items.enumerated().sorted { lhs, rhs in
                let left = keyValue(lhs.element, mergeKey).flatMap { position[$0] } ?? Int.max
                let right = keyValue(rhs.element, mergeKey).flatMap { position[$0] } ?? Int.max
                return left == right ? lhs.offset < rhs.offset : left < right
            }.map(\.element))
        }
        return .object(result)
    }

    /// Merges `patchItems` into `current` element by element, matching on `mergeKey`. The slots of
    /// each merge key value are indexed, so a list of n elements merges in O(n), not O(n²).
    private static func mergeList(_ current: [JSONValue], _ patchItems: [JSONValue], by mergeKey: String) throws -> [JSONValue] {
        var result: [JSONValue?] = current
        // Slots holding each merge key value, first first (the first match is the one patched).
        var slots: [JSONValue: ArraySlice<Int>] = [:]
        for (slot, element) in current.enumerated() {
            if let keyValue = keyValue(element, mergeKey) { slots[keyValue, default: []].append(slot) }
        }
        for item in patchItems {
            guard var keyValue = keyValue(item, mergeKey) else {
                throw APIError.badRequest("strategic merge patch: list element without merge key \"\(mergeKey)\"")
            }
            // A service port patched without its protocol (kubectl's client-side apply keys ports
            // on the number alone) is the port of that number, whatever its protocol.
            if mergeKey == servicePortKey, item["protocol"] == nil, slots[keyValue]?.first == nil,
               let other = slots.first(where: { $0.key["port"] == item["port"] && $0.value.first != nil })?.key {
                keyValue = other
            }
            let slot = slots[keyValue]?.first
            if item["$patch"] == "delete" {
                if let slot { result[slot] = nil; slots[keyValue]?.removeFirst() }
            } else if let slot, let element = result[slot] {
                result[slot] = try strategicMerge(element, item)
            } else {
                result.append(try strip(item))
                slots[keyValue, default: []].append(result.count - 1)
            }
        }
        return result.compactMap { $0 }
    }

    /// Removes directive keys from a value that is inserted as a whole.
    private static func strip(_ value: JSONValue) throws -> JSONValue {
        switch value {
        case .object(let object):
            var result = JSONObject()
            for member in object where !member.key.hasPrefix("$") { result[member.key] = try strip(member.value) }
            return .object(result)
        case .array(let items):
            return .array(try items.map { try strip($0) })
        default:
            return value
        }
    }

    /// kube-apiserver's bound on the operations of one JSON patch.
    static let maximumJSONPatchOperations = 10_000
    /// kube-apiserver's bound on the bytes `copy` operations may add (its request body limit).
    static let maximumCopiedBytes = 3 << 20
    /// The deepest document a patch may produce (the JSON parser's own limit).
    static let maximumDepth = 256

    /// RFC 6902 JSON Patch: add, remove, replace, move, copy and test with JSON Pointers.
    /// Growth is bounded as kube-apiserver bounds it: at most 10,000 operations and 3 MiB copied
    /// (413), and no deeper than the parser reads (422), so `copy` cannot double a document per op.
    static func jsonPatch(_ target: JSONValue, _ patch: JSONValue) throws -> JSONValue {
        guard case .array(let operations) = patch else { throw APIError.badRequest("a JSON patch must be an array of operations") }
        guard operations.count <= maximumJSONPatchOperations else {
            throw APIError(code: 413, reason: "RequestEntityTooLarge",
                           message: "The allowed maximum operations in a JSON patch is \(maximumJSONPatchOperations), got \(operations.count)")
        }
        var document = target
        var copiedBytes = 0
        for operation in operations {
            guard let op = operation["op"]?.stringValue, let path = operation["path"]?.stringValue else {
                throw APIError.badRequest("a JSON patch operation needs \"op\" and \"path\"")
            }
            let pointer = try JSONPointer(path)
            switch op {
            case "add":
                try checkDepth(of: operation["value"] ?? .null, at: pointer, path: path)
                document = try pointer.adding(operation["value"] ?? .null, to: document)
            case "remove": document = try pointer.removing(from: document)
            case "replace":
                _ = try pointer.value(in: document)
                try checkDepth(of: operation["value"] ?? .null, at: pointer, path: path)
                document = try pointer.removing(from: document)
                document = try pointer.adding(operation["value"] ?? .null, to: document)
            case "move", "copy":
                guard let from = operation["from"]?.stringValue else { throw APIError.badRequest("\(op) needs \"from\"") }
                let source = try JSONPointer(from)
                let value = try source.value(in: document)
                if op == "copy" {
                    copiedBytes += KubeJSON.serialize(value).count
                    guard copiedBytes <= maximumCopiedBytes else {
                        throw APIError(code: 413, reason: "RequestEntityTooLarge",
                                       message: "JSON patch copy operations would add more than \(maximumCopiedBytes) bytes")
                    }
                }
                try checkDepth(of: value, at: pointer, path: path)
                if op == "move" { document = try source.removing(from: document) }
                document = try pointer.adding(value, to: document)
            case "test":
                guard try pointer.value(in: document) == (operation["value"] ?? .null) else {
                    throw APIError(code: 422, reason: "Invalid", message: "JSON patch test failed at \(path)")
                }
            default:
                throw APIError.badRequest("unknown JSON patch operation \"\(op)\"")
            }
        }
        return document
    }

    /// A value placed at `pointer` must not make the document deeper than ``maximumDepth``.
    private static func checkDepth(of value: JSONValue, at pointer: JSONPointer, path: String) throws {
        guard pointer.depth + depth(of: value, limit: maximumDepth) <= maximumDepth else {
            throw APIError(code: 422, reason: "Invalid", message: "JSON patch at \(path) would nest the object deeper than \(maximumDepth) levels")
        }
    }

    /// The nesting depth of a value, counting stops past `limit`.
    private static func depth(of value: JSONValue, limit: Int) -> Int {
        guard limit >= 0 else { return 1 }
        switch value {
        case .object(let object): return 1 + (object.map { depth(of: $0.value, limit: limit - 1) }.max() ?? 0)
        case .array(let items): return 1 + (items.map { depth(of: $0, limit: limit - 1) }.max() ?? 0)
        default: return 0
        }
    }
}
