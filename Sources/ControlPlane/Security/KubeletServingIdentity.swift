import SwiftASN1
import X509

/// What this server requires of an agent's serving certificate before it sends a request to
/// it (`pods/log`), beyond a chain to the cluster CA and a SAN for the address dialled: the
/// certificate is for server auth and names the node itself (`system:node:<name>` in
/// `system:nodes`), so another node's certificate — signed for addresses that node claims —
/// does not pass for this one.
enum KubeletServingIdentity {
    /// nil when `der` is a serving certificate of `node`, else why not.
    static func problem(_ der: [UInt8], node: String) -> String? {
        guard let certificate = try? Certificate(derEncoded: der) else { return "the certificate cannot be parsed" }
        let (commonName, organizations) = CSRSigner.names(certificate.subject)
        let expected = Authorizer.nodeUserPrefix + node
        guard commonName == expected, organizations.contains(Authorizer.nodesGroup) else {
            return "it names \(commonName ?? "no common name") (\(organizations.joined(separator: ", "))), not \(expected) in \(Authorizer.nodesGroup)"
        }
        guard let usages = try? certificate.extensions.extendedKeyUsage, usages.contains(.serverAuth) else {
            return "it is not for server authentication"
        }
        return nil
    }
}
