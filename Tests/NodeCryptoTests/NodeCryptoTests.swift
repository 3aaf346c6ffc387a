import Crypto
import FoundationEssentials
import NodeCrypto
import SwiftASN1
import Testing
import X509

/// The agent's C crypto layer against known answers and against the swift-crypto and
/// swift-certificates code iotkube-server uses: what one writes the other must read.
@Suite struct NodeCryptoTests {
    @Test func digestsMatchKnownAnswersInOnePieceAndInMany() {
        let abc = Array("abc".utf8)
        #expect(StreamingDigest.hex(StreamingDigest.hash(.sha1, abc)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(StreamingDigest.hex(StreamingDigest.hash(.sha256, abc)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(StreamingDigest.hex(StreamingDigest.hash(.sha512, abc)) == "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        #expect(StreamingDigest.hex(StreamingDigest.hash(.sha256, [])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let bytes = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        for algorithm in [StreamingDigest.Algorithm.sha1, .sha256, .sha512] {
            var pieces = StreamingDigest(algorithm)
            var start = 0
            for size in [1, 63, 64, 65, 4096, 100_003] where start < bytes.count {
                let end = min(bytes.count, start + size)
                pieces.update(bytes[start..<end])
                start = end
            }
            pieces.update(bytes[start...])
            let copy = pieces
            #expect(pieces.finalize() == StreamingDigest.hash(algorithm, bytes))
            #expect(copy.finalize() == pieces.finalize(), "finalize does not consume the digest")
        }
        #expect(StreamingDigest.hash(.sha256, bytes) == Array(SHA256.hash(data: bytes)))
        #expect(StreamingDigest.hash(.sha512, bytes) == Array(SHA512.hash(data: bytes)))
        #expect(StreamingDigest.hash(.sha1, bytes) == Array(Insecure.SHA1.hash(data: bytes)))
    }

    @Test func hmacMatchesRFC4231AndRefusesAnyOtherCode() {
        let key = Array("Jefe".utf8), message = Array("what do ya want for nothing?".utf8)
        let code = MessageAuthentication.sha256(key: key, message: message)
        #expect(StreamingDigest.hex(code) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(MessageAuthentication.isValidSHA256(code, message: message, key: key))
        var flipped = code
        flipped[31] ^= 1
        #expect(!MessageAuthentication.isValidSHA256(flipped, message: message, key: key))
        #expect(!MessageAuthentication.isValidSHA256(Array(code.prefix(16)), message: message, key: key))
        #expect(!MessageAuthentication.isValidSHA256([], message: message, key: key))
        #expect(!MessageAuthentication.isValidSHA256(code, message: message + [0], key: key))
    }

    @Test func randomBytesDiffer() throws {
        let a = try SecureRandom.bytes(32), b = try SecureRandom.bytes(32)
        #expect(a.count == 32 && a != b)
        #expect(try SecureRandom.bytes(0).isEmpty)
    }

    @Test func requestIsReadAndVerifiedBySwiftCertificates() throws {
        let key = try SigningKey()
        let pem = try key.certificateRequestPEM(for: CertificateNames(
            commonName: "system:node:board-1", organizations: ["system:nodes"], dnsNames: ["board-1"],
            ipv4Addresses: [[192, 168, 1, 20], [10, 0, 0, 7]]))
        let request = try CertificateSigningRequest(pemEncoded: pem)
        #expect(request.version == .v1)
        #expect(request.publicKey.isValidSignature(request.signature, for: request))
        #expect(try derOf(request.publicKey) == key.publicKeyDER())
        // O then CN in the encoding, UTF8String values: what the swift-certificates CSR carried.
        #expect(request.subject == (try DistinguishedName {
            OrganizationName("system:nodes")
            CommonName("system:node:board-1")
        }))
        let names = try #require(try request.attributes.extensionRequest?.extensions.subjectAlternativeNames)
        #expect(Array(names) == [.dnsName("board-1"), .ipAddress(ASN1OctetString(contentBytes: [192, 168, 1, 20])),
                                 .ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 7]))])
        // Without names there is no extension request at all (a client certificate's CSR).
        let plain = try CertificateSigningRequest(pemEncoded: try key.certificateRequestPEM(for: CertificateNames(commonName: "x")))
        #expect(try plain.attributes.extensionRequest == nil)
        #expect(plain.publicKey.isValidSignature(plain.signature, for: plain))
        // The key's PEM is PKCS#8 that swift-crypto reads back as the same key.
        let reread = try P256.Signing.PrivateKey(pemRepresentation: try key.pemRepresentation())
        #expect(try key.pemRepresentation().hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try derOf(Certificate.PublicKey(reread.publicKey)) == key.publicKeyDER())
    }

    @Test func selfSignedCertificateIsAServingCertificate() throws {
        let key = try SigningKey()
        let now = Int64(Date().timeIntervalSince1970)
        let pem = try key.selfSignedCertificatePEM(
            for: CertificateNames(commonName: "board-1@iotkube-agent", dnsNames: ["board-1", "localhost"], ipv4Addresses: [[127, 0, 0, 1]]),
            validFrom: now - 300, until: now + 86400)
        let certificate = try Certificate(pemEncoded: pem)
        #expect(certificate.version == .v3)
        #expect(certificate.issuer == certificate.subject)
        #expect(certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
        #expect(certificate.signatureAlgorithm == .ecdsaWithSHA256)
        #expect(Int64(certificate.notValidBefore.timeIntervalSince1970) == now - 300)
        #expect(Int64(certificate.notValidAfter.timeIntervalSince1970) == now + 86400)
        let serial = certificate.serialNumber.bytes
        #expect(!serial.isEmpty && serial.count <= 20 && serial.first! & 0x80 == 0, "a positive serial")
        let usage = try #require(certificate.extensions.first { $0.oid == .X509ExtensionID.keyUsage })
        #expect(usage.critical)
        #expect(try certificate.extensions.keyUsage == KeyUsage(digitalSignature: true, keyEncipherment: true))
        #expect(try certificate.extensions.extendedKeyUsage == ExtendedKeyUsage([.serverAuth]))
        #expect(try certificate.extensions.subjectAlternativeNames.map(Array.init) == [
            .dnsName("board-1"), .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
        ])
        // Two certificates never share a serial.
        let other = try Certificate(pemEncoded: try key.selfSignedCertificatePEM(for: CertificateNames(commonName: "x"), validFrom: now, until: now + 1))
        #expect(other.serialNumber != certificate.serialNumber)
    }

    @Test func factsAgreeWithSwiftCertificates() throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("system:nodes")
            OrganizationName("team:ü")
            CommonName("system:node:board-1")
        }
        let start = Date(timeIntervalSince1970: 1_700_000_000), end = Date(timeIntervalSince1970: 2_000_000_000)
        let ipv6: [UInt8] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: start, notValidAfter: end, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName("board-1"), .ipAddress(ASN1OctetString(contentBytes: [10, 1, 2, 3])),
                                         .ipAddress(ASN1OctetString(contentBytes: ArraySlice(ipv6))), .uniformResourceIdentifier("https://x")])
            },
            issuerPrivateKey: .init(key))
        let pem = Array(try certificate.serializeAsPEM().pemString.utf8)
        let facts = try CertificateFacts(pem: pem)
        #expect(facts.notValidBefore == 1_700_000_000 && facts.notValidAfter == 2_000_000_000)
        #expect(facts.commonNames == ["system:node:board-1"])
        #expect(facts.organizations == ["system:nodes", "team:ü"])
        #expect(facts.dnsNames == ["board-1"])
        #expect(facts.ipAddresses == [[10, 1, 2, 3], ipv6])
        #expect(facts.publicKeyDER == (try derOf(certificate.publicKey)))
        let der = try derOf(certificate)
        #expect(try CertificateFacts(der: der) == facts)
    }

    @Test func hostileCertificatesAreErrorsNotCrashes() throws {
        let key = P256.Signing.PrivateKey()
        func made(_ name: DistinguishedName, extensions: Certificate.Extensions = Certificate.Extensions()) throws -> [UInt8] {
            try derOf(try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
                notValidBefore: Date(timeIntervalSince1970: 0), notValidAfter: Date(timeIntervalSince1970: 1), issuer: name, subject: name,
                signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(key)))
        }
        let good = try made(try DistinguishedName { CommonName("system:node:a") })
        // A NUL inside the common name would let "system:node:a\0…" pass as "system:node:a" in C.
        let nul = try made(try DistinguishedName { CommonName("system:node:a\u{0}evil") })
        #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts(der: nul) }
        // Several common names: the last one is the user, as Go's crypto/x509 (kube-apiserver) reads it.
        let two = try made(try DistinguishedName { CommonName("first"); CommonName("second") })
        #expect(try CertificateFacts(der: two).commonNames == ["first", "second"])
        // Truncated, padded, empty, and PEM without a certificate.
        for cut in [0, 1, 10, good.count / 2, good.count - 1] {
            #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts(der: Array(good.prefix(cut))) }
        }
        #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts(der: good + [0]) }
        #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts(pem: Array("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8)) }
        #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts(pem: Array("not pem".utf8)) }
        // A subjectAltName extension whose contents are not GeneralNames.
        let garbage = Certificate.Extension(oid: .X509ExtensionID.subjectAlternativeName, critical: false, value: [0x04, 0x01, 0xff])
        let badNames = try made(try DistinguishedName { CommonName("x") }, extensions: try Certificate.Extensions([garbage]))
        #expect(throws: NodeCrypto.CryptoError.self) { try CertificateFacts(der: badNames) }
        // Random bytes and bit flips of a good certificate never crash the reader.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var flipped = good
            let index = Int.random(in: 0..<flipped.count, using: &generator)
            flipped[index] ^= UInt8.random(in: 1...255, using: &generator)
            _ = try? CertificateFacts(der: flipped)
        }
        #expect(try CertificateFacts(der: good).commonNames == ["system:node:a"])
    }

    @Test func nodeNamesAsLongAsKubernetesAllowsFit() throws {
        // A DNS subdomain node name reaches 253 characters; X.509's suggested 64-character bound
        // for CN must not make such a board unable to join or serve.
        let nodeName = String(repeating: "a", count: 63) + "." + String(repeating: "b", count: 63) + "." + String(repeating: "c", count: 63) + "." + String(repeating: "d", count: 61)
        #expect(nodeName.count == 253)
        let key = try SigningKey()
        let request = try CertificateSigningRequest(pemEncoded: try key.certificateRequestPEM(for: CertificateNames(
            commonName: "system:node:\(nodeName)", organizations: ["system:nodes"], dnsNames: [nodeName])))
        #expect(request.subject == (try DistinguishedName { OrganizationName("system:nodes"); CommonName("system:node:\(nodeName)") }))
        let now = Int64(Date().timeIntervalSince1970)
        let pem = try key.selfSignedCertificatePEM(for: CertificateNames(commonName: "\(nodeName)@iotkube-agent", dnsNames: [nodeName]), validFrom: now, until: now + 60)
        #expect(try CertificateFacts(pem: Array(pem.utf8)).commonNames == ["\(nodeName)@iotkube-agent"])
    }

    @Test func namesWithNULBytesAreRefusedBeforeSigning() throws {
        let key = try SigningKey()
        #expect(throws: NodeCrypto.CryptoError.self) { try key.certificateRequestPEM(for: CertificateNames(commonName: "a\u{0}b")) }
        #expect(throws: NodeCrypto.CryptoError.self) { try key.certificateRequestPEM(for: CertificateNames(commonName: "a", dnsNames: ["x\u{0}"])) }
        #expect(throws: NodeCrypto.CryptoError.self) { try key.certificateRequestPEM(for: CertificateNames(commonName: "a", ipv4Addresses: [[1, 2, 3]])) }
    }

    /// The DER encoding of an ASN.1 value (a public key's SubjectPublicKeyInfo, a certificate).
    func derOf(_ value: some DERSerializable) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(value)
        return serializer.serializedBytes
    }
}
