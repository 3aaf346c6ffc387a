import Crypto
import FoundationEssentials
import SwiftASN1
import X509

/// The cluster CA: issues the serving certificate and client certificates (admin, nodes).
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    let privateKey: P256.Signing.PrivateKey

    /// A new self-signed CA valid for ten years.
    public static func generate(commonName: String = "iotkube-ca") throws -> CertificateAuthority {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return CertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// Loads a CA from PEM text.
    public init(certificatePEM: String, keyPEM: String) throws {
        certificate = try Certificate(pemEncoded: certificatePEM)
        privateKey = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
    }

    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString } }
    public var keyPEM: String { privateKey.pemRepresentation }

    /// `sha256:<hex>` of the CA's SubjectPublicKeyInfo, as kubeadm's discovery hash pins it.
    public var publicKeyPin: String { get throws { try Self.publicKeyPin(of: certificate) } }

    /// `sha256:<hex>` of a certificate's SubjectPublicKeyInfo.
    public static func publicKeyPin(of certificate: Certificate) throws -> String {
        var serializer = DER.Serializer()
        try serializer.serialize(certificate.publicKey)
        let digest = SHA256.hash(data: serializer.serializedBytes)
        return "sha256:" + digest.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// Issues a certificate for `publicKey`.
    public func issue(
        commonName: String, organizations: [String] = [], publicKey: Certificate.PublicKey,
        dnsNames: [String] = [], ipAddresses: [[UInt8]] = [], serverAuth: Bool, clientAuth: Bool, validity: TimeInterval
    ) throws -> Certificate {
        let subject = try DistinguishedName {
            for organization in organizations { OrganizationName(organization) }
            CommonName(commonName)
        }
        let now = Date()
        var usages: [ExtendedKeyUsage.Usage] = []
        if serverAuth { usages.append(.serverAuth) }
        if clientAuth { usages.append(.clientAuth) }
        let names: [GeneralName] = dnsNames.map { .dnsName($0) } + ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: ArraySlice($0))) }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(validity),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage(usages)
                AuthorityKeyIdentifier(keyIdentifier: try certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: .init(privateKey))
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// Parses dotted IPv4 text into bytes (for certificate SANs); nil when it is not one.
func ipv4Bytes(_ text: String) -> [UInt8]? {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var bytes: [UInt8] = []
    for part in parts {
        guard let value = UInt8(part) else { return nil }
        bytes.append(value)
    }
    return bytes
}
