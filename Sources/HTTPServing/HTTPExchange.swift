/// Who sent a request, as authenticated by the transport or a credential.
public struct RequestIdentity: Sendable, Hashable {
    public var user: String
    public var groups: [String]

    public init(user: String, groups: [String]) {
        self.user = user
        self.groups = groups
    }
}

/// An HTTP request with its whole body (bodies are capped; watches stream only responses).
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query, percent-decoded.
    public var path: String
    public var query: [String: String]
    /// Every query parameter in order, repeated names included (`command=sh&command=-c`).
    public var queryItems: [(name: String, value: String)] = []
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]
    /// The subject of a verified client certificate, when one was presented.
    public var clientCertificate: RequestIdentity?

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = [], clientCertificate: RequestIdentity? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.clientCertificate = clientCertificate
    }

    /// Splits `/a/b?x=1&y=2` into a decoded path and query parameters.
    static func splitTarget(_ target: String) -> (path: String, query: [String: String]) {
        let (path, items) = splitTargetItems(target)
        var query: [String: String] = [:]
        for item in items { query[item.name] = item.value }
        return (path, query)
    }

    /// Splits `/a/b?x=1&x=2` into a decoded path and every query parameter in order.
    static func splitTargetItems(_ target: String) -> (path: String, items: [(name: String, value: String)]) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var items: [(name: String, value: String)] = []
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                items.append((percentDecode(String(keyValue[0])), keyValue.count > 1 ? percentDecode(String(keyValue[1])) : ""))
            }
        }
        return (percentDecode(String(parts[0]), plusIsSpace: false), items)
    }

    static func percentDecode(_ text: String, plusIsSpace: Bool = true) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") && plusIsSpace {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A response: a complete body, or a stream of chunks (watches, followed logs).
public struct HTTPResponse: Sendable {
    public enum Body: Sendable {
        case bytes([UInt8])
        /// Produces the body chunk by chunk (watches, followed logs); runs until it returns or
        /// the client goes away (a write then throws).
        case stream(@Sendable (ChunkWriter) async throws -> Void)
        /// Switches protocols (the status is 101 and the headers name the protocol): after the
        /// response head the connection is a byte stream the session owns; it is closed when
        /// the session returns.
        case upgrade(@Sendable (ByteStreamConnection) async throws -> Void)
    }

    public var status: Int
    public var headers: [(String, String)]
    public var body: Body

    public init(status: Int, headers: [(String, String)] = [], body: Body = .bytes([])) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: Int, _ bytes: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: .bytes(bytes))
    }

    public static func text(_ status: Int, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: .bytes(Array(text.utf8)))
    }
}

/// Something that answers HTTP requests.
public protocol HTTPRequestHandler: Sendable {
    func handle(_ request: HTTPRequest) async -> HTTPResponse
}

/// Writes chunks of a streamed response body.
public struct ChunkWriter: Sendable {
    let writeChunk: @Sendable ([UInt8]) async throws -> Void

    public init(_ writeChunk: @escaping @Sendable ([UInt8]) async throws -> Void) { self.writeChunk = writeChunk }

    public func write(_ bytes: [UInt8]) async throws { try await writeChunk(bytes) }
}
