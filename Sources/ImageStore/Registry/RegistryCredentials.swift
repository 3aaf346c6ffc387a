import FoundationEssentials
import KubeCoding

/// Registry credentials in Docker's `config.json` form, the form of `kubernetes.io/dockerconfigjson`
/// pull secrets: `{"auths": {"registry": {"auth": base64(user:pass)}}}` (or username/password,
/// or an identity token).
public struct RegistryCredentials: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var username: String
        public var password: String
        public init(username: String, password: String) {
            self.username = username
            self.password = password
        }
    }

    var entries: [String: Entry] = [:]

    public init() {}

    /// Parses a docker config (`.dockerconfigjson`) or the older `.dockercfg` map; `source` names
    /// the file or secret in errors.
    public init(dockerConfigJSON bytes: [UInt8], source: String) throws(ImageStoreError) {
        let tree: JSONValue
        do { tree = try KubeJSON.parse(bytes) } catch { throw .init(.invalidContent, "\(source): not JSON: \(error)") }
        guard let root = tree.objectValue else { throw .init(.invalidContent, "\(source): expected a JSON object") }
        let auths = tree["auths"]?.objectValue ?? root
        for member in auths {
            let key = member.key, value = member.value
            guard value.objectValue != nil else { throw .init(.invalidContent, "\(source): auths.\(key) is not an object") }
            var username = value.string(at: ["username"]) ?? ""
            var password = value.string(at: ["password"]) ?? ""
            if let auth = value.string(at: ["auth"]), !auth.isEmpty {
                guard let decoded = Self.base64Decode(auth), let colon = decoded.firstIndex(of: 0x3A) else {
                    throw .init(.invalidContent, "\(source): auths.\(key).auth is not base64 of user:password")
                }
                username = String(decoding: decoded[..<colon], as: UTF8.self)
                password = String(decoding: decoded[(colon + 1)...], as: UTF8.self)
            }
            if let identityToken = value.string(at: ["identitytoken"]), !identityToken.isEmpty {
                username = "<token>"
                password = identityToken
            }
            guard !username.isEmpty else { continue }
            entries[Self.normalizedKey(key)] = Entry(username: username, password: password)
        }
    }

    /// Adds `other`'s entries; entries already present win (pod secrets before the node file).
    public mutating func merge(_ other: RegistryCredentials) {
        entries.merge(other.entries) { existing, _ in existing }
    }

    /// The credentials for a registry host, if any.
    public func lookup(_ registry: String) -> Entry? {
        entries[Self.normalizedKey(registry)]
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// `https://index.docker.io/v1/` and friends → `docker.io`; scheme and path dropped.
    static func normalizedKey(_ key: String) -> String {
        var host = Substring(key)
        if let scheme = host.firstRange(of: "://") { host = host[scheme.upperBound...] }
        host = host.prefix(while: { $0 != "/" })
        switch host {
        case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com": return ImageReference.defaultRegistry
        default: return String(host)
        }
    }

    static func base64Decode(_ text: String) -> [UInt8]? {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(character)] = UInt8(index)
        }
        var output: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 {
            if character == 0x3D || character == 0x0A || character == 0x0D { continue }
            let value = table[Int(character)]
            guard value != 0xFF else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return output
    }

    static func base64Encode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for (offset, byte) in chunk.enumerated() { value |= UInt32(byte) << UInt32(16 - 8 * offset) }
            for position in 0..<4 {
                if position <= chunk.count {
                    output.append(alphabet[Int(value >> UInt32(18 - 6 * position) & 0x3F)])
                } else {
                    output.append(0x3D)
                }
            }
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }
}
