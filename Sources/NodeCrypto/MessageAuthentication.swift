import CNodeCrypto

/// HMAC-SHA256 and constant-time comparison.
public enum MessageAuthentication {
    /// The HMAC-SHA256 of `message` under `key`.
    public static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var code = [UInt8](repeating: 0, count: 32)
        let result = key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in
                iotkube_hmac_sha256(key.baseAddress, key.count, message.baseAddress, message.count, &code)
            }
        }
        // BoringSSL's HMAC fails only on allocation failure; an all-zero code never verifies.
        return result == 0 ? code : []
    }

    /// Whether `code` is the HMAC-SHA256 of `message` under `key`, compared in constant time.
    public static func isValidSHA256(_ code: [UInt8], message: [UInt8], key: [UInt8]) -> Bool {
        let expected = sha256(key: key, message: message)
        return expected.count == 32 && equalInConstantTime(code, expected)
    }

    /// Whether two byte strings are equal, taking the same time wherever they differ.
    public static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { a in b.withUnsafeBytes { b in iotkube_equal_in_constant_time(a.baseAddress, b.baseAddress, a.count) == 1 } }
    }
}
