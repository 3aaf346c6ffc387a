import HTTPClientCore
import KubeCoding
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import SystemSupport

/// A URL the registry client follows: scheme, host, port and the path with query.
struct RegistryURL: Sendable, Hashable, CustomStringConvertible {
    var secure: Bool
    var host: String
    var port: Int
    var path: String

    init(secure: Bool, hostAndPort: String, path: String) {
        self.secure = secure
        (host, port) = Self.split(hostAndPort, defaultPort: secure ? 443 : 80)
        self.path = path
    }

    /// Parses an absolute `http(s)://` URL, or a path relative to `base` (Location headers).
    init?(_ text: String, relativeTo base: RegistryURL? = nil) {
        if text.hasPrefix("/"), let base {
            self = base
            path = text
            return
        }
        let secure: Bool
        let rest: Substring
        if text.hasPrefix("https://") { secure = true; rest = text.dropFirst(8) }
        else if text.hasPrefix("http://") { secure = false; rest = text.dropFirst(7) }
        else { return nil }
        let authority = rest.prefix(while: { $0 != "/" && $0 != "?" })
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var path = String(rest.dropFirst(authority.count))
        if path.isEmpty { path = "/" } else if path.hasPrefix("?") { path = "/" + path }
        self.init(secure: secure, hostAndPort: String(authority), path: path)
    }

    static func split(_ authority: String, defaultPort: Int) -> (String, Int) {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            return (host, after.hasPrefix(":") ? Int(after.dropFirst()) ?? defaultPort : defaultPort)
        }
        if let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]) {
            return (String(authority[..<colon]), port)
        }
        return (authority, defaultPort)
    }

    var authority: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
    }

    var description: String { "\(secure ? "https" : "http")://\(authority)\(path)" }
}

/// The head of a registry response.
struct RegistryResponseHead: Sendable {
    var status: Int
    var headers: HTTPHeaders
    func header(_ name: String) -> String? { headers.first(name: name) }
}

/// HTTP/1.1 over SwiftNIO for registries: one connection per request, HTTPS with the system CAs
/// (plus a per-registry CA, or no verification for insecure registries), plain HTTP where
/// allowed, a connect timeout and an idle-read timeout (a registry that stops sending fails the
/// request instead of hanging it), and the body streamed to the caller.
final class RegistryHTTPClient: Sendable {
    let configuration: RegistryConfiguration
    private let contexts = Mutex<[String: NIOSSLContext]>([:])

    init(configuration: RegistryConfiguration) {
        self.configuration = configuration
    }

    private func tlsContext(for host: String, verify: Bool) throws(ImageStoreError) -> NIOSSLContext {
        let key = "\(host)|\(verify)"
        if let cached = contexts.withLock({ $0[key] }) { return cached }
        var tls = TLSConfiguration.makeClientConfiguration()
        if !verify { tls.certificateVerification = .none }
        let caFile = configuration.certificateAuthorityFiles[host]
            ?? configuration.certificateAuthorityFiles[host.split(separator: ":").first.map(String.init) ?? host]
        do {
            if let caFile { tls.additionalTrustRoots = [.file(caFile)] }
            let context = try NIOSSLContext(configuration: tls)
            contexts.withLock { $0[key] = context }
            return context
        } catch {
            throw .init(.registry, "TLS setup for \(host)\(caFile.map { " with CA file \($0)" } ?? ""): \(error)")
        }
    }

    typealias Connection = HTTPClientConnection.Channel

    /// A failed TLS handshake as a sentence naming the registry, what went wrong and the setting
    /// that fixes it (BoringSSL's reason code kept in parentheses); nil for other errors.
    static func tlsFailure(_ error: any Error, authority: String) -> ImageStoreError? {
        guard error is NIOSSLError || error is BoringSSLError else { return nil }
        let detail = "\(error)"
        let code = ["WRONG_VERSION_NUMBER", "CERTIFICATE_VERIFY_FAILED", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST", "UNSUPPORTED_PROTOCOL",
                    "SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV1_ALERT_PROTOCOL_VERSION"].first { detail.contains($0) }
        let settings = "insecureRegistries in agent.yaml (--insecure-registry for `images pull`)"
        var failure: ImageStoreError
        switch code {
        case "WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST":
            failure = .init(.registry, "\(authority) does not speak TLS (\(code!)): for a plain-HTTP registry, list it in \(settings)")
            failure.speaksNoTLS = true
        case "CERTIFICATE_VERIFY_FAILED":
            failure = .init(.registry, "\(authority) presented a certificate this board does not trust (CERTIFICATE_VERIFY_FAILED): give its CA in registryCAFiles in agent.yaml, or list it in \(settings)")
        default:
            failure = .init(.registry, "the TLS handshake with \(authority) failed (\(code ?? detail)): check its TLS setup, or list it in \(settings)")
        }
        return failure
    }

    /// Sends `method url` with `headers`; `onHead` sees the response head and says whether to
    /// stream the body into `onBody` (otherwise up to 64 KiB of it are returned for messages).
    func execute(
        _ method: HTTPMethod, _ url: RegistryURL, headers extra: [(String, String)], verifyTLS: Bool = true,
        onHead: (RegistryResponseHead) throws(ImageStoreError) -> Bool = { _ in false },
        onBody: (inout ByteBuffer) throws(ImageStoreError) -> Void = { _ in }
    ) async throws(ImageStoreError) -> (head: RegistryResponseHead, body: [UInt8]) {
        // A cancelled pull starts no more requests.
        guard !Task.isCancelled else { throw .init(.registry, "\(method) \(url): cancelled") }
        let timeout = TimeAmount.seconds(configuration.timeoutSeconds)
        let context = url.secure ? try tlsContext(for: url.authority, verify: verifyTLS) : nil
        let connection: Connection
        let idle: IdleReadState
        do {
            let connected = try await HTTPClientConnection.connect(host: url.host, port: url.port, tls: context, connectTimeout: timeout, idleReadTimeout: timeout)
            connection = connected.channel
            idle = connected.idle
        } catch {
            throw Self.tlsFailure(error, authority: url.authority) ?? .init(.registry, "cannot connect to \(url.authority): \(error)")
        }
        var requestHeaders = HTTPHeaders()
        requestHeaders.add(name: "Host", value: url.authority)
        requestHeaders.add(name: "User-Agent", value: "iotkube/\(IotkubeVersion.current)")
        for (name, value) in extra { requestHeaders.add(name: name, value: value) }
        if method == .POST || method == .PUT { requestHeaders.add(name: "Content-Length", value: "0") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: url.path, headers: requestHeaders)
        var responseHead: RegistryResponseHead?
        var streaming = false
        var collected: [UInt8] = []
        var failure: ImageStoreError?
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await HTTPClientConnection.write([.head(head), .end(nil)], to: outbound, reasonFrom: inbound)
                for try await part in inbound {
                    switch part {
                    case .head(let received):
                        // 1xx informational heads are skipped by NIO's decoder; this is the real one.
                        let registryHead = RegistryResponseHead(status: Int(received.status.code), headers: received.headers)
                        responseHead = registryHead
                        do throws(ImageStoreError) { streaming = try onHead(registryHead) } catch { failure = error; return }
                    case .body(var buffer):
                        if streaming {
                            do throws(ImageStoreError) { try onBody(&buffer) } catch { failure = error; return }
                        } else if collected.count < 65536 {
                            collected.append(contentsOf: buffer.readBytes(length: min(buffer.readableBytes, 65536 - collected.count)) ?? [])
                        }
                    case .end:
                        return
                    }
                }
                responseHead = responseHead.map { RegistryResponseHead(status: -$0.status, headers: $0.headers) }
            }
        } catch {
            if let failure { throw failure }
            if idle.fired { throw .init(.registry, "\(method) \(url): no data for \(configuration.timeoutSeconds) s (registry hung)") }
            throw Self.tlsFailure(error, authority: url.authority) ?? .init(.registry, "\(method) \(url): \(error)")
        }
        if let failure { throw failure }
        if idle.fired { throw .init(.registry, "\(method) \(url): no data for \(configuration.timeoutSeconds) s (registry hung)") }
        guard let responseHead else { throw .init(.registry, "\(method) \(url): the connection closed without a response") }
        guard responseHead.status > 0 else {
            throw .init(.registry, "\(method) \(url): the connection closed before the response ended (truncated)")
        }
        return (responseHead, collected)
    }
}
