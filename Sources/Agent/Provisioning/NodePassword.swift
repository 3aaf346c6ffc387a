import FoundationEssentials
import NodeCrypto
import SystemSupport

/// This board's node password (as k3s keeps one): made at the first join, kept in the
/// configuration directory (0600, not removed by `reset`) and sent with every certificate
/// request made with a bootstrap token. iotkube-server records its hash for the node name on
/// the first join and refuses a later bootstrap join under that name without it, so whoever
/// holds a join token cannot take over another board's identity.
public enum NodePassword {
    public static func path(configDirectory: String) -> String { configDirectory + "/node-password" }

    /// The stored password, made (32 random bytes, hex) when there is none yet.
    public static func loadOrCreate(configDirectory: String) throws -> String {
        let path = path(configDirectory: configDirectory)
        if let bytes = try AtomicFile.read(path) {
            let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
            guard text.utf8.count >= 32, text.utf8.count <= 128 else { throw ProvisioningError("\(path) holds no usable node password (32 to 128 characters); remove it to make a new one") }
            return text
        }
        let password: String
        do { password = StreamingDigest.hex(try SecureRandom.bytes(32)) } catch { throw ProvisioningError("making a node password: \(error)") }
        try AtomicFile.makeDirectory(configDirectory, mode: 0o700)
        try AtomicFile.write(password + "\n", to: path, mode: 0o600)
        return password
    }
}
