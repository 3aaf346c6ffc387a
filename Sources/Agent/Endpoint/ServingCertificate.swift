import Crypto
import FoundationEssentials
import NIOSSL
import SwiftASN1
import SystemSupport
import X509

/// The agent endpoint's TLS: a self-signed serving certificate made at start (as the kubelet
/// does by default) and client certificates verified against the cluster CA.
public enum ServingCertificate {
    public static func tlsContext(nodeName: String, addresses: [String], clusterCAPEM: [UInt8]) throws -> NIOSSLContext {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("\(nodeName)@iotkube-agent") }
        var sans: [GeneralName] = [.dnsName(nodeName), .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        for address in addresses {
            let parts = address.split(separator: ".").compactMap { UInt8($0) }
            if parts.count == 4 { sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(parts)))) }
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sans)
            },
            issuerPrivateKey: .init(key))
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(try certificate.serializeAsPEM().pemString.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(clusterCAPEM))
        configuration.certificateVerification = .optionalVerification
        configuration.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: configuration)
    }
}
