import KubeCoding
import NIOCore
import NIOHTTP1
import OCI
import Synchronization

/// A Distribution API v2 client for pulling: manifests by tag or digest and blobs (with
/// resumption), through mirrors, with anonymous, basic and bearer-token authentication
/// (the `WWW-Authenticate` challenge flow).
public final class RegistryClient: Sendable {
    let http: RegistryHTTPClient
    let configuration: RegistryConfiguration
    /// Authorization header values by "host|repository".
    private let authorizations = Mutex<[String: String]>([:])
    /// Insecure hosts found to speak plain HTTP.
    private let plainHTTPHosts = Mutex<Set<String>>([])

    public init(configuration: RegistryConfiguration) {
        self.configuration = configuration
        http = RegistryHTTPClient(configuration: configuration)
    }

    /// The largest manifest or index accepted (the Distribution reference server's limit).
    static let manifestLimit = 4 << 20

    /// Fetches a manifest or index by tag or digest. Returns its bytes, media type and digest; a
    /// digest-addressed fetch, and the registry's `Docker-Content-Digest`, are verified.
    func manifest(_ reference: ImageReference, _ manifestReference: String, expected: Descriptor? = nil) async throws(ImageStoreError) -> (bytes: [UInt8], mediaType: String, digest: Digest) {
        let limit = expected.map { Int($0.size) } ?? Self.manifestLimit
        guard limit <= Self.manifestLimit else {
            throw .init(.invalidContent, "\(reference.name)@\(manifestReference): manifest declared as \(limit) bytes, more than the \(Self.manifestLimit) allowed")
        }
        var bytes: [UInt8] = []
        let head = try await fetch(reference, path: "manifests/\(manifestReference)",
                                   accept: MediaType.manifestAccept.joined(separator: ", "), rangeStart: nil) { (buffer: inout ByteBuffer) throws(ImageStoreError) in
            guard bytes.count + buffer.readableBytes <= limit else {
                throw .init(.invalidContent, "\(reference.name):\(manifestReference): manifest larger than \(expected == nil ? "the \(limit) bytes allowed" : "its declared \(limit) bytes")")
            }
            bytes.append(contentsOf: buffer.readableBytesView)
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        }
        var hash = DigestHasher()
        hash.update(bytes)
        let digest = hash.finalize()
        if let expected {
            guard bytes.count == expected.size, digest == expected.digest else {
                throw .init(.invalidContent, "\(reference.name)@\(expected.digest): manifest content has digest \(digest) and \(bytes.count) bytes; expected \(expected.size) bytes with that digest")
            }
        } else if let requested = try? Digest(manifestReference), requested != digest {
            throw .init(.invalidContent, "\(reference.name)@\(requested): the registry sent content with digest \(digest)")
        }
        if let claimed = head.header("Docker-Content-Digest"), let claimedDigest = try? Digest(claimed),
           claimedDigest.algorithm == "sha256", claimedDigest != digest {
            throw .init(.invalidContent, "\(reference.name):\(manifestReference): Docker-Content-Digest \(claimed) does not match the content (\(digest))")
        }
        var mediaType = head.header("Content-Type").map { String($0.prefix(while: { $0 != ";" })) } ?? ""
        if let declared = (try? KubeJSON.parse(bytes))?.string(at: ["mediaType"]) { mediaType = declared }
        if let expected, !expected.mediaType.isEmpty, mediaType.isEmpty { mediaType = expected.mediaType }
        return (bytes, mediaType, digest)
    }

    /// Streams a blob into `sink`, starting at `offset` when the registry honours ranges.
    /// Returns whether the body starts at `offset` (206) or at 0 (200).
    /// `restart` runs before the body when the registry ignored the range and sends it all.
    func blob(_ reference: ImageReference, _ digest: Digest, offset: Int64,
              restart: () throws(ImageStoreError) -> Void,
              sink: (inout ByteBuffer) throws(ImageStoreError) -> Void) async throws(ImageStoreError) {
        _ = try await fetch(reference, path: "blobs/\(digest)", accept: nil, rangeStart: offset > 0 ? offset : nil,
                            onSuccess: { head throws(ImageStoreError) in if offset > 0 && head.status != 206 { try restart() } },
                            sink: sink)
    }

    /// GET `/v2/<repository>/<path>` on the first endpoint that has it, handling redirects and
    /// authentication challenges; the 2xx body goes to `sink`.
    private func fetch(_ reference: ImageReference, path: String, accept: String?, rangeStart: Int64?,
                       onSuccess: (RegistryResponseHead) throws(ImageStoreError) -> Void = { _ in },
                       sink: (inout ByteBuffer) throws(ImageStoreError) -> Void) async throws(ImageStoreError) -> RegistryResponseHead {
        var lastError: ImageStoreError?
        for endpoint in configuration.endpoints(for: reference.registry) {
            do {
                return try await fetch(reference, endpoint: endpoint, path: path, accept: accept, rangeStart: rangeStart, onSuccess: onSuccess, sink: sink)
            } catch {
                lastError = error
                // A mirror that fails or lacks the content falls through to the next endpoint;
                // content problems are not retried elsewhere.
                if error.kind == .invalidContent || error.kind == .storage { throw error }
            }
        }
        throw lastError ?? .init(.registry, "no endpoint for \(reference.registry)")
    }

    private func fetch(_ reference: ImageReference, endpoint: RegistryEndpoint, path: String, accept: String?, rangeStart: Int64?,
                       onSuccess: (RegistryResponseHead) throws(ImageStoreError) -> Void,
                       sink: (inout ByteBuffer) throws(ImageStoreError) -> Void) async throws(ImageStoreError) -> RegistryResponseHead {
        let plain = endpoint.plainHTTPFallback && plainHTTPHosts.withLock { $0.contains(endpoint.host) }
        var url = RegistryURL(secure: !plain, hostAndPort: endpoint.host, path: "/v2/\(reference.repository)/\(path)")
        let authKey = "\(endpoint.host)|\(reference.repository)"
        var authorized = false
        var redirects = 0
        while true {
            var headers: [(String, String)] = []
            if let accept { headers.append(("Accept", accept)) }
            if let rangeStart { headers.append(("Range", "bytes=\(rangeStart)-")) }
            // Credentials go only to the registry itself, never to a redirect target elsewhere.
            let sameHost = url.authority == RegistryURL(secure: url.secure, hostAndPort: endpoint.host, path: "/").authority
            if sameHost, let authorization = authorizations.withLock({ $0[authKey] }) { headers.append(("Authorization", authorization)) }
            let response: (head: RegistryResponseHead, body: [UInt8])
            do {
                response = try await http.execute(.GET, url, headers: headers, verifyTLS: endpoint.secure) { head throws(ImageStoreError) in
                    guard (200...299).contains(head.status) else { return false }
                    try onSuccess(head)
                    return true
                } onBody: { buffer throws(ImageStoreError) in try sink(&buffer) }
            } catch where url.secure && sameHost && error.kind == .registry && (!endpoint.secure || (endpoint.plainHTTPFallback && error.speaksNoTLS)) {
                // An insecure (or loopback) registry that does not speak TLS: plain HTTP from now on.
                plainHTTPHosts.withLock { _ = $0.insert(endpoint.host) }
                url.secure = false
                url.port = RegistryURL(secure: false, hostAndPort: endpoint.host, path: "/").port
                continue
            }
            let head = response.head
            switch head.status {
            case 200...299:
                return head
            case 301, 302, 303, 307, 308:
                redirects += 1
                guard redirects <= 5, let location = head.header("Location"), let next = RegistryURL(location, relativeTo: url) else {
                    throw .init(.registry, "GET \(url): bad or too many redirects")
                }
                guard next.secure || !url.secure || !endpoint.secure else {
                    throw .init(.registry, "GET \(url): refusing a redirect from HTTPS to \(next)")
                }
                url = next
            case 401 where !authorized && sameHost:
                authorized = true
                let authorization = try await authorize(challenge: head.header("WWW-Authenticate"), endpoint: endpoint, reference: reference)
                authorizations.withLock { $0[authKey] = authorization }
            case 401, 403:
                let hasCredentials = configuration.credentials.lookup(endpoint.credentialsKey) != nil
                throw .init(.unauthorized, "\(reference.name): access denied by \(endpoint.host) (\(head.status))\(hasCredentials ? " with the configured credentials" : "; no credentials are configured for \(endpoint.credentialsKey)")\(Self.message(response.body))")
            case 404:
                throw .init(.notFound, "\(reference.name): \(path.hasPrefix("manifests/") ? "manifest" : "blob") \(path.split(separator: "/").last ?? "") not found on \(endpoint.host)\(Self.message(response.body))")
            case 416:
                throw .init(.registry, "GET \(url): range \(rangeStart ?? 0)- not satisfiable")
            default:
                throw .init(.registry, "GET \(url): HTTP \(head.status)\(Self.message(response.body))")
            }
        }
    }

    /// The registry's error message (`{"errors":[{"code","message"}]}`), if any.
    static func message(_ body: [UInt8]) -> String {
        guard let tree = try? KubeJSON.parse(body), case .array(let errors)? = tree["errors"], let first = errors.first else { return "" }
        return ": " + [first.string(at: ["code"]), first.string(at: ["message"])].compactMap { $0 }.joined(separator: " ")
    }

    /// Answers an authentication challenge: Basic with the configured credentials, or Bearer by
    /// fetching a token from the realm (with the credentials when there are some).
    private func authorize(challenge: String?, endpoint: RegistryEndpoint, reference: ImageReference) async throws(ImageStoreError) -> String {
        let credentials = configuration.credentials.lookup(endpoint.credentialsKey)
        guard let challenge, let parsed = AuthenticationChallenge(challenge) else {
            throw .init(.unauthorized, "\(reference.name): \(endpoint.host) requires authentication but sent no usable challenge")
        }
        switch parsed.scheme {
        case "basic":
            guard let credentials else {
                throw .init(.unauthorized, "\(reference.name): \(endpoint.host) requires a user name and password; none configured for \(endpoint.credentialsKey)")
            }
            return "Basic " + RegistryCredentials.base64Encode(Array("\(credentials.username):\(credentials.password)".utf8))
        case "bearer":
            guard let realm = parsed.parameters["realm"], var tokenURL = RegistryURL(realm) else {
                throw .init(.unauthorized, "\(reference.name): bearer challenge from \(endpoint.host) has no usable realm")
            }
            var query: [String] = []
            if let service = parsed.parameters["service"] { query.append("service=\(Self.percentEncode(service))") }
            query.append("scope=\(Self.percentEncode(parsed.parameters["scope"] ?? "repository:\(reference.repository):pull"))")
            tokenURL.path += (tokenURL.path.contains("?") ? "&" : "?") + query.joined(separator: "&")
            var headers: [(String, String)] = [("Accept", "application/json")]
            if let credentials {
                headers.append(("Authorization", "Basic " + RegistryCredentials.base64Encode(Array("\(credentials.username):\(credentials.password)".utf8))))
            }
            let response = try await http.execute(.GET, tokenURL, headers: headers)
            guard response.head.status == 200 else {
                throw .init(.unauthorized, "\(reference.name): the token service \(realm) answered \(response.head.status)\(credentials == nil ? " (no credentials configured)" : "")")
            }
            guard let tree = try? KubeJSON.parse(response.body),
                  let token = tree.string(at: ["token"]) ?? tree.string(at: ["access_token"]), !token.isEmpty else {
                throw .init(.unauthorized, "\(reference.name): the token service \(realm) sent no token")
            }
            return "Bearer \(token)"
        default:
            throw .init(.unauthorized, "\(reference.name): \(endpoint.host) asks for unsupported authentication \"\(parsed.scheme)\"")
        }
    }

    static func percentEncode(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: output.append(Character(Unicode.Scalar(byte)))
            default:
                let digits = Array("0123456789ABCDEF")
                output += "%\(digits[Int(byte >> 4)])\(digits[Int(byte & 0xF)])"
            }
        }
        return output
    }
}

/// A parsed `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`.
struct AuthenticationChallenge: Sendable {
    var scheme: String
    var parameters: [String: String] = [:]

    init?(_ header: String) {
        let trimmed = header.drop(while: { $0 == " " })
        guard let space = trimmed.firstIndex(of: " ") ?? (trimmed.isEmpty ? nil : trimmed.endIndex) else { return nil }
        scheme = trimmed[..<space].lowercased()
        var rest = trimmed[space...]
        while true {
            rest = rest.drop(while: { $0 == " " || $0 == "," })
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = rest[..<equals].lowercased()
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\", let escaped = rest.first { value.append(escaped); rest = rest.dropFirst(); continue }
                    if character == "\"" { break }
                    value.append(character)
                }
            } else {
                value = String(rest.prefix(while: { $0 != "," }))
                rest = rest.dropFirst(value.count)
            }
            parameters[key] = value
        }
    }
}
