import KubeModel
import Synchronization

/// Per-client bounds on what a client holds open: connections per source address and
/// concurrent watches per identity (the analogue of kube-apiserver's max-requests-inflight).
/// A client over a bound gets 429 TooManyRequests with `Retry-After`, as kube-apiserver answers.
public final class ClientLimits: Sendable {
    /// Open connections allowed from one address.
    public let connectionsPerAddress: Int
    /// Concurrent watches allowed for one identity (certificate user, token, or address).
    public let watchesPerClient: Int
    /// An upgraded connection of a client in this group stops counting against its address once
    /// upgraded (iotkube-server: `system:nodes`, whose upgrade is the node's tunnel, one per node:
    /// many boards behind one carrier-grade NAT address must not share 512 slots).
    public let upgradesExemptForGroup: String?
    private let connections = Mutex<[String: Int]>([:])
    private let watches = Mutex<[String: Int]>([:])

    public init(connectionsPerAddress: Int = 512, watchesPerClient: Int = 100, upgradesExemptForGroup: String? = nil) {
        self.connectionsPerAddress = max(1, connectionsPerAddress)
        self.watchesPerClient = max(1, watchesPerClient)
        self.upgradesExemptForGroup = upgradesExemptForGroup
    }

    /// Counts a connection from `address`; false (and nothing counted) when over the bound.
    func openConnection(from address: String) -> Bool { Self.acquire(connections, address, connectionsPerAddress) }
    func closeConnection(from address: String) { Self.release(connections, address) }

    /// Counts a watch of `client`; false (and nothing counted) when over the bound.
    func startWatch(_ client: String) -> Bool { Self.acquire(watches, client, watchesPerClient) }
    func endWatch(_ client: String) { Self.release(watches, client) }

    /// Whether a request is a watch (`?watch=true`, `?watch=1` or the legacy `/watch/` paths).
    static func isWatch(_ request: HTTPRequest) -> Bool {
        ["true", "1"].contains(request.query["watch"]?.lowercased() ?? "") || request.path.contains("/watch/")
    }

    /// Who a watch is counted against: the certificate's user, else the bearer credential, else the address.
    static func watchClient(_ request: HTTPRequest, address: String) -> String {
        if let user = request.clientCertificate?.user { return "user:\(user)" }
        if let authorization = request.headers["authorization"] { return "credential:\(authorization)" }
        return "address:\(address)"
    }

    /// The 429 answer, with the seconds a client should wait.
    static func tooManyRequests(_ message: String) -> HTTPResponse {
        var details = StatusDetails()
        details.retryAfterSeconds = 1
        var response = HTTPResponse.json(429, APIHTTPServer.statusBytes(Status(code: 429, reason: "TooManyRequests", message: message, details: details)))
        response.headers.append(("Retry-After", "1"))
        return response
    }

    private static func acquire(_ counts: borrowing Mutex<[String: Int]>, _ key: String, _ limit: Int) -> Bool {
        counts.withLock { counts in
            guard counts[key, default: 0] < limit else { return false }
            counts[key, default: 0] += 1
            return true
        }
    }

    private static func release(_ counts: borrowing Mutex<[String: Int]>, _ key: String) {
        counts.withLock { counts in
            let remaining = counts[key, default: 1] - 1
            counts[key] = remaining > 0 ? remaining : nil
        }
    }
}
