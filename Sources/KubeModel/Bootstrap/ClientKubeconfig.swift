import FoundationEssentials

/// Writes the kubeconfig files iotkube hands out (admin, nodes, the bootstrap token): one
/// cluster, one user with a client certificate or a token, one context.
public enum ClientKubeconfig {
    public static func render(server: String, caPEM: [UInt8], user: String, certificatePEM: [UInt8], keyPEM: [UInt8]) -> String {
        render(server: server, caPEM: caPEM, user: user, credentials: [
            "client-certificate-data: \(Data(certificatePEM).base64EncodedString())", "client-key-data: \(Data(keyPEM).base64EncodedString())",
        ])
    }

    /// A kubeconfig authenticating with a bearer token (the kubelet's bootstrap kubeconfig).
    public static func render(server: String, caPEM: [UInt8], user: String, token: String) -> String {
        render(server: server, caPEM: caPEM, user: user, credentials: ["token: \(token)"])
    }

    private static func render(server: String, caPEM: [UInt8], user: String, credentials: [String]) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: iotkube
          cluster:
            server: \(server)
            certificate-authority-data: \(Data(caPEM).base64EncodedString())
        users:
        - name: \(user)
          user:
        \(credentials.map { "    " + $0 + "\n" }.joined())contexts:
        - name: \(user)@iotkube
          context:
            cluster: iotkube
            user: \(user)
        current-context: \(user)@iotkube

        """
    }
}

/// base64url without padding (RFC 4648 §5), as JWS and join tokens use it.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        var text = ""
        for character in Data(bytes).base64EncodedString() {
            switch character {
            case "+": text.append("-")
            case "/": text.append("_")
            case "=": continue
            default: text.append(character)
            }
        }
        return text
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var standard = ""
        for character in text {
            switch character {
            case "-": standard.append("+")
            case "_": standard.append("/")
            default: standard.append(character)
            }
        }
        while standard.count % 4 != 0 { standard.append("=") }
        return Data(base64Encoded: standard).map { [UInt8]($0) }
    }

    /// Compares secrets in time independent of where they differ.
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
