import CNodeCrypto

/// Bytes from the operating system's random source (getrandom), for keys and passwords.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: max(count, 0))
        guard bytes.withUnsafeMutableBytes({ iotkube_random_bytes($0.baseAddress, $0.count) }) == 0 else {
            throw CryptoError("the random source failed")
        }
        return bytes
    }
}
