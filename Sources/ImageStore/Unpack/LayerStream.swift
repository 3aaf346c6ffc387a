#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CCompression
import OCI
import SystemSupport

/// The uncompressed bytes of a layer blob read from a file: decompressed (gzip, zstd or none),
/// hashed into the layer's diffID and counted against a budget so a decompression bomb stops
/// with an error instead of filling the disk.
final class LayerStream {
    private let file: Int32
    private let path: String
    private let decompressor: OpaquePointer?
    private var input = [UInt8](repeating: 0, count: 65536)
    private var inputStart = 0
    private var inputEnd = 0
    private var inputEOF = false
    private var hasher = DigestHasher()
    private(set) var produced: Int64 = 0
    /// Uncompressed bytes allowed; more is a decompression bomb.
    let budget: Int64
    let budgetReason: String
    /// What the stream is, for messages ("layer <path>", "archive <path>").
    let label: String
    static let freeSpaceReason = "the free disk space"

    init(path: String, compression: LayerCompression, budget: Int64, budgetReason: String, label: String? = nil) throws(ImageStoreError) {
        self.path = path
        self.label = label ?? "layer \(path)"
        self.budget = budget
        self.budgetReason = budgetReason
        file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { throw FileSystem.error("open", path) }
        switch compression {
        case .none: decompressor = nil
        case .gzip, .zstd:
            guard let made = iotkube_decompressor_new(compression == .gzip ? Int32(IOTKUBE_GZIP.rawValue) : Int32(IOTKUBE_ZSTD.rawValue)) else {
                close(file)
                throw .init(.storage, "out of memory starting the \(compression) decompressor")
            }
            decompressor = made
        }
    }

    deinit {
        close(file)
        if let decompressor { iotkube_decompressor_free(decompressor) }
    }

    private func fill() throws(ImageStoreError) {
        guard !inputEOF else { return }
        if inputStart == inputEnd { inputStart = 0; inputEnd = 0 }
        let count = SystemCall.retrying { input.withUnsafeMutableBytes { raw in Glibc.read(file, raw.baseAddress! + inputEnd, raw.count - inputEnd) } }
        if count < 0 { throw FileSystem.error("read", path) }
        if count == 0 { inputEOF = true } else { inputEnd += count }
    }

    /// Reads up to `buffer.count` uncompressed bytes; 0 at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(ImageStoreError) -> Int {
        var count = 0
        while count == 0 {
            if inputStart == inputEnd { try fill() }
            if let decompressor {
                var consumed = 0, made = 0
                var boundary: Int32 = 0
                let status = input.withUnsafeBytes { raw in
                    iotkube_decompressor_run(decompressor, raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + inputStart, inputEnd - inputStart,
                                             &consumed, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), buffer.count, &made, &boundary)
                }
                guard status == IOTKUBE_DECOMPRESS_OK.rawValue else {
                    throw .init(.invalidContent, "\(label): corrupt compressed data: \(String(cString: iotkube_decompressor_error(decompressor)))")
                }
                inputStart += consumed
                count = made
                if made == 0 && consumed == 0 && inputStart == inputEnd && inputEOF {
                    guard boundary == 1 else { throw .init(.invalidContent, "\(label): the compressed stream is truncated") }
                    return 0
                }
            } else {
                let available = inputEnd - inputStart
                if available == 0 && inputEOF { return 0 }
                count = min(available, buffer.count)
                input.withUnsafeBytes { raw in buffer.baseAddress!.copyMemory(from: raw.baseAddress! + inputStart, byteCount: count) }
                inputStart += count
            }
        }
        produced += Int64(count)
        guard produced <= budget else {
            if budgetReason == Self.freeSpaceReason {
                throw .init(.storage, "\(label): unpacking needs more than the \(budget) bytes free on disk (disk full; \(ImageStore.diskReserve) bytes are kept free)")
            }
            throw .init(.invalidContent, "\(label): expands beyond \(budget) bytes (\(budgetReason)); refusing a decompression bomb")
        }
        hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        return count
    }

    /// The sha256 of everything read so far (the diffID once the stream is drained).
    var diffID: Digest { hasher.finalize() }
}

/// Buffered exact reads over a LayerStream, as the tar reader needs them.
final class LayerReader {
    let stream: LayerStream
    private var buffer = [UInt8](repeating: 0, count: 128 * 1024)
    private var start = 0
    private var end = 0

    init(_ stream: LayerStream) { self.stream = stream }

    private func refill() throws(ImageStoreError) -> Bool {
        if start == end { start = 0; end = 0 }
        if end == buffer.count {
            buffer.replaceSubrange(0..<end - start, with: buffer[start..<end])
            end -= start
            start = 0
        }
        let count = try withMutableBytes(&buffer) { (raw) throws(ImageStoreError) in
            try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[end...]))
        }
        end += count
        return count > 0
    }

    /// Exactly `count` bytes, or nil at a clean end of stream before any byte.
    func readExactly(_ count: Int) throws(ImageStoreError) -> [UInt8]? {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        while result.count < count {
            if start == end, try !refill() {
                if result.isEmpty { return nil }
                throw .init(.invalidContent, "the layer ends in the middle of a tar record (truncated)")
            }
            let take = min(count - result.count, end - start)
            result.append(contentsOf: buffer[start..<start + take])
            start += take
        }
        return result
    }

    /// Streams `count` bytes to `consume` in chunks.
    func forward(_ count: Int64, _ consume: (UnsafeRawBufferPointer) throws(ImageStoreError) -> Void) throws(ImageStoreError) {
        var remaining = count
        while remaining > 0 {
            if start == end, try !refill() {
                throw .init(.invalidContent, "layer ends inside a file's data (truncated)")
            }
            let take = Int(min(remaining, Int64(end - start)))
            try withBytes(buffer) { (raw) throws(ImageStoreError) in try consume(UnsafeRawBufferPointer(rebasing: raw[start..<start + take])) }
            start += take
            remaining -= Int64(take)
        }
    }

    /// Reads and hashes the rest of the stream (trailing blocks count towards the diffID).
    func drain() throws(ImageStoreError) {
        start = end
        while try refill() { start = end }
    }
}
