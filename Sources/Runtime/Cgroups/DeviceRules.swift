import OCI

/// Device access rules (v1 `devices.allow` lines).
public enum DeviceRules {
    /// What every container may use: the standard /dev nodes, ptys and tun.
    public static let standard: [RuntimeSpec.Resources.DeviceRule] = [
        rule("c", 1, 3), rule("c", 1, 5), rule("c", 1, 7), rule("c", 1, 8), rule("c", 1, 9), rule("c", 5, 0), rule("c", 5, 1),
        rule("c", 5, 2), rule("c", 136, nil), rule("c", 10, 200),
    ]

    public static func rule(_ type: String, _ major: Int64?, _ minor: Int64?) -> RuntimeSpec.Resources.DeviceRule {
        RuntimeSpec.Resources.DeviceRule(allow: true, type: type, major: major, minor: minor, access: "rwm")
    }

    /// "rwm" as the kernel's bits (m = 1, r = 2, w = 4); nil or empty means all three.
    static func accessBits(_ access: String?) -> UInt32 {
        guard let access, !access.isEmpty else { return 7 }
        return (access.contains("m") ? 1 : 0) | (access.contains("r") ? 2 : 0) | (access.contains("w") ? 4 : 0)
    }

    static func text(_ rule: RuntimeSpec.Resources.DeviceRule) -> String {
        let type = rule.type ?? "a"
        let major = rule.major.map(String.init) ?? "*"
        let minor = rule.minor.map(String.init) ?? "*"
        return type == "a" ? "a" : "\(type) \(major):\(minor) \(rule.access ?? "rwm")"
    }
}
