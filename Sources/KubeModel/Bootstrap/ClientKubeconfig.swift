import FoundationEssentials

/// Writes the kubeconfig files iotkube hands out (admin, nodes): one cluster, one user with a
/// client certificate, one context.
public enum ClientKubeconfig {
    public static func render(server: String, caPEM: [UInt8], user: String, certificatePEM: [UInt8], keyPEM: [UInt8]) -> String {
        func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
        return """
            apiVersion: v1
            kind: Config
            clusters:
            - name: iotkube
              cluster:
                server: \(server)
                certificate-authority-data: \(base64(caPEM))
            users:
            - name: \(user)
              user:
                client-certificate-data: \(base64(certificatePEM))
                client-key-data: \(base64(keyPEM))
            contexts:
            - name: \(user)@iotkube
              context:
                cluster: iotkube
                user: \(user)
            current-context: \(user)@iotkube

            """
    }
}

extension ClientKubeconfig {
    /// A kubeconfig authenticating with a bearer token (the kubelet's bootstrap kubeconfig).
    public static func render(server: String, caPEM: [UInt8], user: String, token: String) -> String {
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
            token: \(token)
        contexts:
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
