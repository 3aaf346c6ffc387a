import KubeModel

/// A typed Kubernetes API client that works against any conformant API server.
public struct KubeAPIClient: Sendable {
    let transport: HTTPSTransport
    /// Where and how this client connects.
    public let configuration: ClientConfiguration

    public init(configuration: ClientConfiguration) throws(KubeClientError) {
        transport = try HTTPSTransport(configuration: configuration)
        self.configuration = configuration
    }

    /// The collection path of a type: `/api/v1/namespaces/<ns>/pods`, `/apis/<g>/<v>/nodes`.
    static func collectionPath<T: KubeObject>(_ type: T.Type, namespace: String?) -> String {
        let prefix = T.group.isEmpty ? "/api/\(T.apiVersion)" : "/apis/\(T.apiVersion)"
        return namespace.map { "\(prefix)/namespaces/\($0)/\(T.plural)" } ?? "\(prefix)/\(T.plural)"
    }

    static func itemPath<T: KubeObject>(_ type: T.Type, namespace: String?, name: String, subresource: String? = nil) -> String {
        collectionPath(type, namespace: namespace) + "/" + name + (subresource.map { "/\($0)" } ?? "")
    }

    private func decode<R: Decodable>(_ type: R.Type, status: Int, body: [UInt8], expecting codes: ClosedRange<Int> = 200...299) throws(KubeClientError) -> R {
        guard codes.contains(status) else {
            if let error = try? KubeJSON.decode(Status.self, from: body) { throw .status(error) }
            throw .protocolViolation("HTTP \(status): \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        do {
            return try KubeJSON.decode(type, from: body)
        } catch {
            throw .protocolViolation("cannot decode \(R.self): \(error)")
        }
    }

    public func get<T: KubeObject>(_ type: T.Type, namespace: String? = nil, name: String) async throws(KubeClientError) -> T {
        let (status, body) = try await transport.send(.GET, Self.itemPath(type, namespace: namespace, name: name))
        return try decode(type, status: status, body: body)
    }

    /// Lists objects, optionally filtered with label and field selectors.
    public func list<T: KubeObject>(_ type: T.Type, namespace: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil) async throws(KubeClientError) -> KubeList<T> {
        var query: [String] = []
        if let labelSelector { query.append("labelSelector=\(Self.escape(labelSelector))") }
        if let fieldSelector { query.append("fieldSelector=\(Self.escape(fieldSelector))") }
        let path = Self.collectionPath(type, namespace: namespace) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let (status, body) = try await transport.send(.GET, path)
        return try decode(KubeList<T>.self, status: status, body: body)
    }

    public func create<T: KubeObject>(_ object: T) async throws(KubeClientError) -> T {
        let body = try encode(object)
        let (status, response) = try await transport.send(.POST, Self.collectionPath(T.self, namespace: object.metadata.namespace), body: body, contentType: "application/json")
        return try decode(T.self, status: status, body: response)
    }

    /// Replaces an object (409 Conflict when its resourceVersion is stale).
    public func update<T: KubeObject>(_ object: T, subresource: String? = nil) async throws(KubeClientError) -> T {
        let path = Self.itemPath(T.self, namespace: object.metadata.namespace, name: object.metadata.name ?? "", subresource: subresource)
        let (status, response) = try await transport.send(.PUT, path, body: try encode(object), contentType: "application/json")
        return try decode(T.self, status: status, body: response)
    }

    /// Applies a JSON merge patch (RFC 7386).
    public func mergePatch<T: KubeObject>(_ type: T.Type, namespace: String? = nil, name: String, patch: JSONValue, subresource: String? = nil) async throws(KubeClientError) -> T {
        let path = Self.itemPath(type, namespace: namespace, name: name, subresource: subresource)
        let (status, response) = try await transport.send(.PATCH, path, body: KubeJSON.serialize(patch), contentType: "application/merge-patch+json")
        return try decode(type, status: status, body: response)
    }

    /// Deletes an object; `gracePeriodSeconds` 0 deletes a terminating pod for good.
    public func delete<T: KubeObject>(_ type: T.Type, namespace: String? = nil, name: String, gracePeriodSeconds: Int64? = nil) async throws(KubeClientError) {
        var path = Self.itemPath(type, namespace: namespace, name: name)
        if let gracePeriodSeconds { path += "?gracePeriodSeconds=\(gracePeriodSeconds)" }
        let (status, body) = try await transport.send(.DELETE, path)
        let _: JSONValue = try decode(JSONValue.self, status: status, body: body)
    }

    /// Watches changes after `resourceVersion`, calling `onEvent` for each until the server
    /// ends the stream or the task is cancelled. A 410 Gone (the version is too old) throws
    /// `.status` with code 410: relist, then watch again.
    public func watch<T: KubeObject>(
        _ type: T.Type, namespace: String? = nil, resourceVersion: String, fieldSelector: String? = nil, timeoutSeconds: Int = 300,
        onEvent: @escaping @Sendable (WatchEvent<T>) async throws -> Void
    ) async throws(KubeClientError) {
        var path = Self.collectionPath(type, namespace: namespace) + "?watch=true&allowWatchBookmarks=true&resourceVersion=\(Self.escape(resourceVersion))&timeoutSeconds=\(timeoutSeconds)"
        if let fieldSelector { path += "&fieldSelector=\(Self.escape(fieldSelector))" }
        let (status, errorBody) = try await transport.stream(path) { line in
            let event: WatchEvent<T>
            do {
                event = try KubeJSON.decode(WatchEvent<T>.self, from: line)
            } catch {
                throw KubeClientError.protocolViolation("bad watch event: \(error)")
            }
            if event.type == .error, let status = event.status { throw KubeClientError.status(status) }
            try await onEvent(event)
        }
        if status != 200 {
            if let error = try? KubeJSON.decode(Status.self, from: errorBody) { throw .status(error) }
            throw .protocolViolation("watch answered HTTP \(status)")
        }
    }

    /// A GET of any path on the server (endpoints outside the typed API, such as a kubelet's):
    /// the status and the body.
    public func getRaw(_ path: String) async throws(KubeClientError) -> (status: Int, body: [UInt8]) {
        try await transport.send(.GET, path)
    }

    /// A GET of any path whose body is delivered line by line (without the newline, empty lines
    /// included) until the server ends it or the task is cancelled; a non-200 body is returned whole.
    public func streamLines(_ path: String, onLine: @escaping @Sendable ([UInt8]) async throws -> Void) async throws(KubeClientError) -> (status: Int, errorBody: [UInt8]) {
        try await transport.stream(path, keepEmptyLines: true, onLine: onLine)
    }

    private func encode<T: Encodable>(_ object: T) throws(KubeClientError) -> [UInt8] {
        do {
            return try KubeJSON.encode(object)
        } catch {
            throw .protocolViolation("cannot encode: \(error)")
        }
    }

    static func escape(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.append(Character(Unicode.Scalar(byte)))
            default:
                result += "%" + String(byte, radix: 16, uppercase: true).leftPaddedHex
            }
        }
        return result
    }
}

extension String {
    fileprivate var leftPaddedHex: String { count == 1 ? "0" + self : self }
}
