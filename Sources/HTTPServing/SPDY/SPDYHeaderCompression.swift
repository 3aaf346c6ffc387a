import CCompression

/// One direction of a SPDY/3 session's header compression: zlib with the protocol's preset
/// dictionary, one zlib stream for the whole session (so blocks must be compressed in the order
/// they are sent, and decompressed in the order they arrive). Used by one task at a time.
public final class SPDYHeaderCompression: @unchecked Sendable {
    /// The SPDY/3 dictionary: these words, each with a 4-byte big-endian length, then the
    /// status codes, reason phrases, dates and media types of the specification (1423 bytes).
    nonisolated(unsafe) public static let dictionary: UnsafeBufferPointer<UInt8> = {
        let words = [
            "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding", "accept-language",
            "accept-ranges", "age", "allow", "authorization", "cache-control", "connection", "content-base", "content-encoding",
            "content-language", "content-length", "content-location", "content-md5", "content-range", "content-type", "date", "etag",
            "expect", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
            "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
            "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
            "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin",
        ]
        let tail = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            + "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
            + "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
            + "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
            + "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
            + "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
        var bytes: [UInt8] = []
        for word in words {
            let count = UInt32(word.utf8.count)
            bytes += [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)] + Array(word.utf8)
        }
        bytes += Array(tail.utf8)
        let storage = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
        _ = storage.initialize(from: bytes)
        return UnsafeBufferPointer(storage)
    }()

    /// A decompressed header block larger than this is refused (a decompression bomb).
    public static let maximumBlockSize = 64 << 10

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let handle: OpaquePointer
    let compresses: Bool

    public init(compress: Bool) throws {
        guard let handle = iotkube_header_zlib_new(compress ? 1 : 0, Self.dictionary.baseAddress, Self.dictionary.count) else {
            throw Failure(description: "no memory for header compression")
        }
        self.handle = handle
        compresses = compress
    }

    deinit { iotkube_header_zlib_free(handle) }

    /// Compresses or decompresses one header block.
    public func run(_ input: [UInt8]) throws -> [UInt8] {
        let capacity = compresses ? input.count + 64 + input.count / 8 : Self.maximumBlockSize
        var output = [UInt8](repeating: 0, count: capacity)
        let produced = input.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { target in
                iotkube_header_zlib_run(handle, source.baseAddress, source.count, target.baseAddress, target.count)
            }
        }
        switch produced {
        case -2: throw Failure(description: compresses ? "a header block did not compress" : "a header block over \(Self.maximumBlockSize) bytes")
        case ..<0: throw Failure(description: "a corrupt header block (zlib with the SPDY/3 dictionary)")
        default: return Array(output[..<produced])
        }
    }

    /// Name/value pairs as SPDY/3 lays them out: a 4-byte count, then 4-byte lengths before
    /// each name and value.
    public static func encode(_ headers: [(String, String)]) -> [UInt8] {
        func length(_ count: Int) -> [UInt8] {
            let value = UInt32(count)
            return [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
        }
        var bytes = length(headers.count)
        for (name, value) in headers { bytes += length(name.utf8.count) + Array(name.utf8) + length(value.utf8.count) + Array(value.utf8) }
        return bytes
    }

    /// The pairs of a decompressed block (names lower-cased; a repeated name keeps its last value).
    public static func decode(_ bytes: [UInt8]) throws -> [String: String] {
        var offset = 0
        // Lengths are read as UInt32 and checked against the block before they become Int
        // (on a 32-bit board an Int built from FF FF FF FF would be negative).
        func number() throws -> Int {
            guard bytes.count - offset >= 4 else { throw Failure(description: "a truncated header block") }
            defer { offset += 4 }
            let value = bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard value <= UInt32(bytes.count) else { throw Failure(description: "a header block with a length past its end") }
            return Int(value)
        }
        func text() throws -> String {
            let count = try number()
            guard count <= bytes.count - offset else { throw Failure(description: "a header block with a length past its end") }
            defer { offset += count }
            return String(decoding: bytes[offset..<offset + count], as: UTF8.self)
        }
        let pairs = try number()
        guard pairs <= 100 else { throw Failure(description: "a header block with \(pairs) headers") }
        var headers: [String: String] = [:]
        for _ in 0..<pairs {
            let name = try text().lowercased()
            headers[name] = try text()
        }
        return headers
    }
}
