/// An image platform: os, architecture and variant as the OCI image index names them
/// (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`).
public struct Platform: Codable, Sendable, Hashable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String = "linux", architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    /// Parses `os/arch[/variant]` (the `--platform` option), normalising aliases
    /// (`aarch64` → `arm64`, `x86_64` → `amd64`, `armhf` → `arm/v7`, `armel` → `arm/v6`).
    public init(parsing text: String) throws(OCIError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty }) else {
            throw OCIError("platform \"\(text)\": expected os/architecture[/variant], e.g. linux/arm/v7")
        }
        self = Platform.normalized(os: parts[0], architecture: parts[1], variant: parts.count == 3 ? parts[2] : nil)
    }

    /// The canonical spelling of a platform; arm64's default variant is v8.
    public static func normalized(os: String, architecture: String, variant: String?) -> Platform {
        var architecture = architecture.lowercased()
        var variant = variant?.lowercased()
        switch architecture {
        case "x86_64", "x86-64": architecture = "amd64"
        case "aarch64": architecture = "arm64"
        case "armhf": architecture = "arm"; variant = variant ?? "v7"
        case "armel": architecture = "arm"; variant = variant ?? "v6"
        case "i386", "i686": architecture = "386"
        default: break
        }
        if architecture == "arm64", variant == nil || variant == "8" { variant = "v8" }
        if architecture == "arm", let v = variant, !v.hasPrefix("v") { variant = "v" + v }
        return Platform(os: os.lowercased(), architecture: architecture, variant: variant)
    }

    public var normalized: Platform { Platform.normalized(os: os, architecture: architecture, variant: variant) }

    public var description: String {
        variant.map { "\(os)/\(architecture)/\($0)" } ?? "\(os)/\(architecture)"
    }

    /// How well an index entry for `candidate` runs on this (host) platform: nil when it cannot,
    /// otherwise higher is better. An arm/v7 board runs v7, v6 and v5 images and prefers v7; an
    /// arm64 board runs arm64 only (32-bit arm needs a compat kernel the store cannot assume).
    public func score(_ candidate: Platform) -> Int? {
        let host = normalized
        let other = candidate.normalized
        guard host.os == other.os, host.architecture == other.architecture else { return nil }
        guard host.architecture == "arm" else {
            return other.variant == host.variant ? 2 : (other.variant == nil ? 1 : nil)
        }
        let hostLevel = Int(host.variant?.dropFirst() ?? "7") ?? 7
        guard let otherVariant = other.variant else { return 1 }   // unspecified arm: assume it runs
        guard let otherLevel = Int(otherVariant.dropFirst()), otherLevel <= hostLevel else { return nil }
        return 10 + otherLevel
    }
}
