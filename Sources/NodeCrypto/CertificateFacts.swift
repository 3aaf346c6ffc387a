#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CNodeCrypto

/// What the agent reads from an X.509 certificate: validity, public key, subject CN and O, and
/// subjectAltName DNS names and IP addresses. Parsing is BoringSSL's.
public struct CertificateFacts: Sendable, Equatable {
    /// POSIX seconds.
    public var notValidBefore: Int64
    public var notValidAfter: Int64
    /// The DER SubjectPublicKeyInfo.
    public var publicKeyDER: [UInt8]
    public var commonNames: [String]
    public var organizations: [String]
    public var dnsNames: [String]
    /// Each 4 (IPv4) or 16 (IPv6) bytes.
    public var ipAddresses: [[UInt8]]

    /// The first certificate of a PEM text.
    public init(pem: [UInt8]) throws(CryptoError) {
        try self.init(bytes: pem, pem: true)
    }

    /// One DER certificate (trailing bytes are an error).
    public init(der: [UInt8]) throws(CryptoError) {
        try self.init(bytes: der, pem: false)
    }

    /// Every certificate of a PEM text (a CA bundle), each with its own PEM; other PEM blocks
    /// are skipped. A malformed certificate, or more than `limit` of them, is an error.
    public static func all(inPEM pem: [UInt8], limit: Int = 16) throws(CryptoError) -> [(facts: CertificateFacts, pem: String)] {
        var found: [(facts: CertificateFacts, pem: String)] = []
        var offset = 0
        while offset < pem.count {
            guard found.count < limit else { throw CryptoError(refusing: "the PEM text holds more than \(limit) certificates") }
            var consumed = 0
            var failed: Int32 = 0
            let parsed = pem.withUnsafeBufferPointer { buffer in
                iotkube_certificate_parse_next_pem(buffer.baseAddress! + offset, buffer.count - offset, &consumed, &failed)
            }
            guard let parsed else {
                if failed != 0 { throw CryptoError("certificate \(found.count + 1) of the PEM text is malformed") }
                break
            }
            defer { iotkube_certificate_free(parsed) }
            let facts = try CertificateFacts(parsed: parsed)
            var length = 0
            guard let text = iotkube_certificate_pem(parsed, &length) else { throw CryptoError("writing a certificate as PEM") }
            found.append((facts, String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self)))
            free(text)
            guard consumed > 0 else { break }
            offset += min(consumed, pem.count - offset)
        }
        return found
    }

    /// Whether the certificate `issuerPEM` issued `certificatePEM`: names and key identifiers
    /// match, the issuer may sign certificates, and its key verifies the signature. False when
    /// either does not parse.
    public static func isIssued(_ certificatePEM: String, by issuerPEM: String) -> Bool {
        let subject = Array(certificatePEM.utf8), issuer = Array(issuerPEM.utf8)
        guard let parsedSubject = subject.withUnsafeBufferPointer({ iotkube_certificate_parse($0.baseAddress, $0.count, 1) }) else { return false }
        defer { iotkube_certificate_free(parsedSubject) }
        guard let parsedIssuer = issuer.withUnsafeBufferPointer({ iotkube_certificate_parse($0.baseAddress, $0.count, 1) }) else { return false }
        defer { iotkube_certificate_free(parsedIssuer) }
        return iotkube_certificate_issued_by(parsedSubject, parsedIssuer) == 1
    }

    private init(bytes: [UInt8], pem: Bool) throws(CryptoError) {
        let parsed = bytes.withUnsafeBufferPointer { iotkube_certificate_parse($0.baseAddress, $0.count, pem ? 1 : 0) }
        guard let parsed else { throw CryptoError(pem ? "no certificate in the PEM text" : "not a DER certificate") }
        defer { iotkube_certificate_free(parsed) }
        try self.init(parsed: parsed)
    }

    private init(parsed: UnsafeMutableRawPointer) throws(CryptoError) {
        var notBefore: Int64 = 0, notAfter: Int64 = 0
        guard iotkube_certificate_validity(parsed, &notBefore, &notAfter) == 0 else { throw CryptoError("the certificate's validity cannot be read") }
        notValidBefore = notBefore
        notValidAfter = notAfter
        var length = 0
        guard let der = iotkube_certificate_public_der(parsed, &length) else { throw CryptoError("the certificate's public key cannot be read") }
        publicKeyDER = Array(UnsafeBufferPointer(start: der, count: length))
        free(der)
        commonNames = try Self.subject(parsed, kind: IOTKUBE_SUBJECT_COMMON_NAME)
        organizations = try Self.subject(parsed, kind: IOTKUBE_SUBJECT_ORGANIZATION)
        let count = iotkube_certificate_alt_name_count(parsed)
        guard count >= 0 else { throw CryptoError("the certificate's subjectAltName extension is malformed") }
        dnsNames = []
        ipAddresses = []
        for index in 0..<count {
            var kind: Int32 = 0
            var size = 0
            guard let bytes = iotkube_certificate_alt_name(parsed, index, &kind, &size) else { continue }
            let value = Array(UnsafeBufferPointer(start: bytes, count: size))
            free(bytes)
            if kind == IOTKUBE_NAME_DNS { dnsNames.append(String(decoding: value, as: UTF8.self)) }
            if kind == IOTKUBE_NAME_IP { ipAddresses.append(value) }
        }
    }

    private static func subject(_ parsed: UnsafeMutableRawPointer, kind: Int32) throws(CryptoError) -> [String] {
        var values: [String] = []
        var position: Int32 = -1
        while true {
            var length = 0
            var failed: Int32 = 0
            guard let text = iotkube_certificate_subject(parsed, kind, &position, &length, &failed) else {
                if failed != 0 { throw CryptoError("a subject attribute of the certificate is not text") }
                return values
            }
            values.append(String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self))
            free(text)
        }
    }
}
