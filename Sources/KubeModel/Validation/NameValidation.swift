/// The API server's rules for names: DNS labels and subdomains, label keys, port names.
public enum NameValidation {
    public static func dnsLabelProblem(_ text: String) -> String? {
        let valid = text.count <= 63 && !text.isEmpty && text.utf8.allSatisfy(isLowerAlphanumericOrDash)
            && text.first != "-" && text.last != "-"
        return valid ? nil : "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc')"
    }

    public static func dnsSubdomainProblem(_ text: String) -> String? {
        let labelsValid = text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.allSatisfy(isLowerAlphanumericOrDash) && label.first != "-" && label.last != "-"
        }
        return text.count <= 253 && labelsValid ? nil
            : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
    }

    /// IANA service names (named ports): 1-15 lowercase alphanumerics or '-', at least one letter,
    /// no leading, trailing or double '-'.
    public static func portNameProblem(_ text: String) -> String? {
        if text.isEmpty || text.count > 15 { return "must be no more than 15 characters" }
        if !text.utf8.allSatisfy(isLowerAlphanumericOrDash) { return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)" }
        if !text.utf8.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) { return "must contain at least one letter (a-z)" }
        if text.hasPrefix("-") || text.hasSuffix("-") { return "must not begin or end with a hyphen" }
        if text.contains("--") { return "must not contain consecutive hyphens" }
        return nil
    }

    /// Label keys: an optional DNS subdomain prefix and a name of at most 63 characters.
    public static func qualifiedNameProblem(_ key: String) -> String? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.last, !name.isEmpty, name.count <= 63 else { return "name part must be no more than 63 characters and non-empty" }
        if parts.count == 2, dnsSubdomainProblem(String(parts[0])) != nil { return "prefix part must be a DNS subdomain" }
        let allowed = name.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
        return allowed && isAlphanumeric(name.utf8.first!) && isAlphanumeric(name.utf8.last!) ? nil
            : "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    }

    private static func isLowerAlphanumericOrDash(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}

extension NameValidation {
    /// Label values: empty, or at most 63 alphanumerics, '-', '_' and '.', alphanumeric at both ends.
    public static func labelValueProblem(_ value: String) -> String? {
        if value.isEmpty { return nil }
        let bytes = Array(value.utf8)
        let isAlphanumeric = { (byte: UInt8) in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        }
        let allowed = bytes.count <= 63 && bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
        return allowed && isAlphanumeric(bytes.first!) && isAlphanumeric(bytes.last!) ? nil
            : "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    }
}
