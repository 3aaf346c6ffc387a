#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CNodeCrypto

/// A P-256 private key made on this machine, and what it signs: certificate requests and
/// self-signed serving certificates (ECDSA with SHA-256).
public final class SigningKey: @unchecked Sendable {
    // Never changed after generation; BoringSSL's EVP_PKEY is safe to read from many threads.
    private let key: UnsafeMutableRawPointer

    /// A new random key.
    public init() throws(CryptoError) {
        guard let key = iotkube_key_generate() else { throw CryptoError("making a P-256 key") }
        self.key = key
    }

    deinit { iotkube_key_free(key) }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    public func pemRepresentation() throws(CryptoError) -> String {
        var length = 0
        guard let pem = iotkube_key_pem(key, &length) else { throw CryptoError("writing the key as PEM") }
        defer { iotkube_free_secret(pem, length) }
        return String(decoding: UnsafeRawBufferPointer(start: pem, count: length), as: UTF8.self)
    }

    /// The public key as a DER SubjectPublicKeyInfo (compare with ``CertificateFacts/publicKeyDER``).
    public func publicKeyDER() throws(CryptoError) -> [UInt8] {
        var length = 0
        guard let der = iotkube_key_public_der(key, &length) else { throw CryptoError("encoding the public key") }
        defer { free(der) }
        return Array(UnsafeBufferPointer(start: der, count: length))
    }

    /// A PKCS#10 certificate request for `names`, signed by this key, as PEM.
    public func certificateRequestPEM(for names: CertificateNames) throws(CryptoError) -> String {
        var length = 0
        let pem = try names.withCNames { iotkube_request_pem(key, $0, &length) }
        return try Self.text(pem, length: length, step: "making the certificate request")
    }

    /// A self-signed serving certificate for `names` (key usage digitalSignature and
    /// keyEncipherment, extended key usage serverAuth), valid between two POSIX times, as PEM.
    public func selfSignedCertificatePEM(for names: CertificateNames, validFrom notBefore: Int64, until notAfter: Int64) throws(CryptoError) -> String {
        var length = 0
        let pem = try names.withCNames { iotkube_self_signed_pem(key, $0, notBefore, notAfter, &length) }
        return try Self.text(pem, length: length, step: "making the self-signed certificate")
    }

    private static func text(_ pointer: UnsafeMutablePointer<CChar>?, length: Int, step: String) throws(CryptoError) -> String {
        guard let pointer else { throw CryptoError(step) }
        defer { free(pointer) }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }
}
