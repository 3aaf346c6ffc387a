#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CNodeCrypto

/// Who a certificate or request is for: subject organizations (O) and common name (CN), and the
/// DNS names and IPv4 addresses of its subjectAltName extension.
public struct CertificateNames: Sendable {
    public var commonName: String
    public var organizations: [String]
    public var dnsNames: [String]
    public var ipv4Addresses: [[UInt8]]

    public init(commonName: String, organizations: [String] = [], dnsNames: [String] = [], ipv4Addresses: [[UInt8]] = []) {
        self.commonName = commonName
        self.organizations = organizations
        self.dnsNames = dnsNames
        self.ipv4Addresses = ipv4Addresses
    }

    /// Calls `body` with the names as C strings; a name holding a NUL byte is an error.
    func withCNames<R>(_ body: (UnsafePointer<iotkube_certificate_names>) -> R) throws(CryptoError) -> R {
        for text in [commonName] + organizations + dnsNames where text.utf8.contains(0) {
            throw CryptoError(refusing: "certificate name \"\(text)\" holds a NUL byte")
        }
        guard ipv4Addresses.allSatisfy({ $0.count == 4 }) else { throw CryptoError(refusing: "an IPv4 address is not 4 bytes") }
        let organizationStrings = organizations.map { strdup($0) }
        let dnsStrings = dnsNames.map { strdup($0) }
        defer { (organizationStrings + dnsStrings).forEach { free($0) } }
        guard !(organizationStrings + dnsStrings).contains(nil) else { throw CryptoError(refusing: "out of memory for certificate names") }
        let addresses = ipv4Addresses.flatMap { $0 }
        return commonName.withCString { commonName in
            organizationStrings.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { organizations in
                dnsStrings.map { $0.map { UnsafePointer($0) } }.withUnsafeBufferPointer { dnsNames in
                    addresses.withUnsafeBufferPointer { addresses in
                        var names = iotkube_certificate_names(
                            common_name: commonName, organizations: organizations.baseAddress, organization_count: organizations.count,
                            dns_names: dnsNames.baseAddress, dns_name_count: dnsNames.count,
                            ipv4_addresses: addresses.baseAddress, ipv4_address_count: ipv4Addresses.count)
                        return body(&names)
                    }
                }
            }
        }
    }
}
