import FoundationEssentials

/// A content digest `algorithm:hex` (OCI image spec "Digests"). Only sha256 and sha512 are
/// accepted, with the hex length each requires, so a digest is always safe as a file name.
public struct Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let algorithm: String
    public let hex: String

    public init(_ text: String) throws(OCIError) {
        guard let colon = text.firstIndex(of: ":") else { throw OCIError("\"\(text)\" is not a digest (algorithm:hex)") }
        let algorithm = String(text[..<colon])
        let hex = String(text[text.index(after: colon)...])
        let length: Int
        switch algorithm {
        case "sha256": length = 64
        case "sha512": length = 128
        default: throw OCIError("digest \"\(text)\": unsupported algorithm \"\(algorithm)\" (sha256 or sha512)")
        }
        guard hex.utf8.count == length, hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw OCIError("digest \"\(text)\": \(algorithm) needs \(length) lower-case hex digits")
        }
        self.algorithm = algorithm
        self.hex = hex
    }

    /// A sha256 digest from raw hash bytes.
    public init(sha256 bytes: some Sequence<UInt8>) {
        algorithm = "sha256"
        hex = bytes.map { byte in
            let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
        }.joined()
    }

    public var description: String { "\(algorithm):\(hex)" }
    /// The first 12 hex digits, as `images ls` shows image IDs.
    public var short: String { String(hex.prefix(12)) }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try Digest(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }
}

/// A malformed or unsupported OCI document; the message names the field.
public struct OCIError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
