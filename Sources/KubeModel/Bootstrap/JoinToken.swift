import FoundationEssentials

/// The one self-contained credential a board joins with:
///
///     iotkube1.<server URL, base64url>.<sha256 of the CA public key, hex>.<token id>.<token secret>
///
/// It carries where the server is, which CA to trust (so the agent verifies the server before it
/// sends any secret, like kubeadm's `--discovery-token-ca-cert-hash`), and a Kubernetes
/// bootstrap token (`<6 chars>.<16 chars>` of `[a-z0-9]`).
public struct JoinToken: Sendable, Hashable, CustomStringConvertible {
    public static let prefix = "iotkube1"

    /// `https://host:port`.
    public var server: String
    /// The CA public key pin as hex, without the `sha256:` prefix.
    public var caPinHex: String
    public var bootstrapToken: BootstrapToken

    public init(server: String, caPinHex: String, bootstrapToken: BootstrapToken) {
        self.server = server
        self.caPinHex = caPinHex
        self.bootstrapToken = bootstrapToken
    }

    /// Why a join token was refused.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws(ParseError) {
        let parts = text.trimmingASCIIWhitespace().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == Self.prefix else {
            throw ParseError(description: "not an iotkube join token (expected iotkube1.<server>.<ca-pin>.<id>.<secret>)")
        }
        guard let serverBytes = Base64URL.decode(parts[1]), let server = String(validating: serverBytes, as: UTF8.self),
              server.hasPrefix("https://") else {
            throw ParseError(description: "the server part of the join token is garbled")
        }
        guard parts[2].count == 64, parts[2].utf8.allSatisfy(Self.isLowerHex) else {
            throw ParseError(description: "the CA pin of the join token is not a SHA-256 hash")
        }
        guard let token = BootstrapToken(id: parts[3], secret: parts[4]) else {
            throw ParseError(description: "the bootstrap credential of the join token is malformed")
        }
        self.init(server: server, caPinHex: parts[2], bootstrapToken: token)
    }

    public var description: String {
        [Self.prefix, Base64URL.encode(Array(server.utf8)), caPinHex, bootstrapToken.id, bootstrapToken.secret].joined(separator: ".")
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
    }
}

/// A Kubernetes bootstrap token: `<id>.<secret>`, 6 and 16 characters of `[a-z0-9]`.
public struct BootstrapToken: Sendable, Hashable, CustomStringConvertible {
    public var id: String
    public var secret: String

    public init?(id: String, secret: String) {
        guard id.count == 6, secret.count == 16, (id + secret).utf8.allSatisfy(Self.isTokenCharacter) else { return nil }
        self.id = id
        self.secret = secret
    }

    /// Parses `abcdef.0123456789abcdef`.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        self.init(id: String(parts[0]), secret: String(parts[1]))
    }

    /// A new random token.
    public static func generate() -> BootstrapToken {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        let id = String((0..<6).map { _ in alphabet.randomElement(using: &generator)! })
        let secret = String((0..<16).map { _ in alphabet.randomElement(using: &generator)! })
        return BootstrapToken(id: id, secret: secret)!
    }

    public var description: String { "\(id).\(secret)" }
    /// The name of the Secret that holds it in kube-system.
    public var secretName: String { "bootstrap-token-\(id)" }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
