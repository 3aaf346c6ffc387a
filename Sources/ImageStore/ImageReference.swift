import OCI

/// An image reference as a pod spec names it: `[registry[:port]/]repository[:tag][@digest]`,
/// normalised like Docker does (`busybox` → `docker.io/library/busybox:latest`).
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host (`docker.io`, `registry.local:5000`).
    public var registry: String
    /// The repository path (`library/busybox`).
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    public static let defaultRegistry = "docker.io"

    public init(parsing text: String) throws(ImageStoreError) {
        func invalid(_ why: String) -> ImageStoreError { .init(.invalidContent, "image reference \"\(text)\": \(why)") }
        guard !text.isEmpty, text.utf8.count <= 4096 else { throw invalid("empty or too long") }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw invalid("contains spaces or non-ASCII characters") }
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            do { digest = try Digest(String(rest[rest.index(after: at)...])) } catch { throw invalid(error.description) }
            rest = rest[..<at]
        }
        // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let tag = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(tag) else { throw invalid("tag \"\(tag)\" is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}") }
            self.tag = tag
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // The first component is a registry when it looks like a host: has '.', ':' or is localhost.
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" || first.lowercased() != first {
            registry = first
            components.removeFirst()
        } else {
            registry = Self.defaultRegistry
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = Self.defaultRegistry }
        if registry == Self.defaultRegistry && components.count == 1 { components.insert("library", at: 0) }
        guard !components.isEmpty, components.allSatisfy(Self.isValidPathComponent) else {
            throw invalid("repository \"\(components.joined(separator: "/"))\" must be lower-case path components of [a-z0-9] separated by '.', '_', '__' or '-'")
        }
        guard Self.isValidHost(registry) else { throw invalid("registry \"\(registry)\" is not host[:port]") }
        repository = components.joined(separator: "/")
        if tag == nil && digest == nil { tag = "latest" }
    }

    /// `registry/repository` without tag or digest.
    public var name: String { "\(registry)/\(repository)" }

    /// The tag or digest a registry is asked for (the digest wins when both are given).
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    public var description: String {
        var text = name
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    /// The same repository pinned to `digest` (`name@digest`, as `status.imageID` shows it).
    public func pinned(to digest: Digest) -> String { "\(name)@\(digest)" }

    static func isValidTag(_ tag: String) -> Bool {
        guard let first = tag.utf8.first, tag.utf8.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x5F }
        return word(first) && tag.utf8.allSatisfy { word($0) || $0 == 0x2E || $0 == 0x2D }
    }

    static func isValidPathComponent(_ component: String) -> Bool {
        let bytes = Array(component.utf8)
        func alnum(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x7A).contains(c) }
        guard let first = bytes.first, let last = bytes.last, alnum(first), alnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            let c = bytes[index]
            if alnum(c) { index += 1; continue }
            // Separators: '.', '_', '__', one or more '-'.
            var end = index
            while end < bytes.count, !alnum(bytes[end]) { end += 1 }
            let separator = bytes[index..<end]
            let ok = separator.elementsEqual([0x2E]) || separator.elementsEqual([0x5F]) || separator.elementsEqual([0x5F, 0x5F])
                || separator.allSatisfy { $0 == 0x2D }
            guard ok else { return false }
            index = end
        }
        return true
    }

    static func isValidHost(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasPrefix("[") {   // [ipv6]:port
            guard let close = name.firstIndex(of: "]") else { return false }
            let after = name[name.index(after: close)...]
            return after.isEmpty || (after.hasPrefix(":") && UInt16(after.dropFirst()) != nil)
        }
        if let colon = name.lastIndex(of: ":") {
            guard UInt16(name[name.index(after: colon)...]) != nil else { return false }
            name = name[..<colon]
        }
        return !name.isEmpty && name.utf8.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == 0x2E || c == 0x2D
        }
    }
}
