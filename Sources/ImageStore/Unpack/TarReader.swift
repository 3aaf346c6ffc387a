/// One entry of a layer tarball, with PAX and GNU long-name extensions applied.
struct TarEntry {
    enum Kind: Equatable {
        case regular, hardLink, symbolicLink, characterDevice, blockDevice, directory, fifo
    }

    var path: String
    var kind: Kind
    var size: Int64
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var modificationTime: Int64
    var modificationNanoseconds: Int = 0
    var linkTarget: String
    var deviceMajor: UInt32
    var deviceMinor: UInt32
    var extendedAttributes: [(String, [UInt8])] = []
}

/// A streaming reader of POSIX ustar, PAX and GNU tar archives (what image layers are).
/// Header checksums are checked; numeric fields may be octal or GNU base-256.
struct TarReader {
    let reader: LayerReader
    /// Where in the layer the reader is, for messages.
    private(set) var entryIndex = 0
    static let metadataLimit: Int64 = 1 << 20

    init(_ reader: LayerReader) { self.reader = reader }

    private func invalid(_ why: String) -> ImageStoreError {
        .init(.invalidContent, "tar entry #\(entryIndex): \(why)")
    }

    /// The next entry, or nil at the end of the archive. The caller must consume exactly
    /// `entry.size` bytes of data with `readData` before asking for the next one.
    mutating func next() throws(ImageStoreError) -> TarEntry? {
        var paxRecords: [String: String] = [:]
        var paxAttributes: [(String, [UInt8])] = []
        var longName: String?
        var longLink: String?
        while true {
            guard let header = try reader.readExactly(512) else { return nil }   // no end marker: tolerated
            if header.allSatisfy({ $0 == 0 }) { return nil }                       // end of archive
            entryIndex += 1
            try verifyChecksum(header)
            let type = header[156]
            let size = try number(header, 124, 12, "size")
            guard size >= 0 else { throw invalid("negative size") }
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= Self.metadataLimit else { throw invalid("extended header of \(size) bytes is larger than \(Self.metadataLimit)") }
                let data = try readPadded(size)
                switch type {
                case UInt8(ascii: "x"):
                    (paxRecords, paxAttributes) = try parsePAX(data)
                case UInt8(ascii: "L"): longName = try limitedName(data.prefix(while: { $0 != 0 }), "GNU long name")
                case UInt8(ascii: "K"): longLink = try limitedName(data.prefix(while: { $0 != 0 }), "GNU long link target")
                default: break   // global PAX headers carry nothing a layer needs
                }
                continue
            default: break
            }
            let kind: TarEntry.Kind
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .regular
            case UInt8(ascii: "1"): kind = .hardLink
            case UInt8(ascii: "2"): kind = .symbolicLink
            case UInt8(ascii: "3"): kind = .characterDevice
            case UInt8(ascii: "4"): kind = .blockDevice
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "6"): kind = .fifo
            case UInt8(ascii: "S"): throw invalid("GNU sparse files are not supported")
            default: throw invalid("unsupported entry type '\(Character(Unicode.Scalar(type)))'")
            }
            var name = string(header, 0, 100)
            let isUstar = header[257..<263].elementsEqual(Array("ustar\0".utf8))
            if isUstar {
                let prefix = string(header, 345, 155)
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            var entry = TarEntry(
                path: longName ?? name, kind: kind, size: kind == .regular ? size : 0,
                mode: UInt32(truncatingIfNeeded: try number(header, 100, 8, "mode")) & 0o7777,
                uid: UInt32(truncatingIfNeeded: try number(header, 108, 8, "uid")),
                gid: UInt32(truncatingIfNeeded: try number(header, 116, 8, "gid")),
                modificationTime: try number(header, 136, 12, "mtime"),
                linkTarget: longLink ?? string(header, 157, 100),
                deviceMajor: UInt32(truncatingIfNeeded: (try? number(header, 329, 8, "devmajor")) ?? 0),
                deviceMinor: UInt32(truncatingIfNeeded: (try? number(header, 337, 8, "devminor")) ?? 0)
            )
            if kind != .regular && size > 0 {
                // Data on a non-file entry is not allowed; skip it (without holding it) rather than misread the stream.
                try reader.forward(size) { _ throws(ImageStoreError) in }
                let padding = (512 - size % 512) % 512
                if padding > 0 { try reader.forward(padding) { _ throws(ImageStoreError) in } }
            }
            for (key, value) in paxRecords {
                switch key {
                case "path": entry.path = try limitedName(Array(value.utf8), "PAX path")
                case "linkpath": entry.linkTarget = try limitedName(Array(value.utf8), "PAX linkpath")
                case "size":
                    guard let parsed = Int64(value), parsed >= 0 else { throw invalid("PAX size \"\(value)\"") }
                    if kind == .regular { entry.size = parsed }
                case "uid": entry.uid = UInt32(value) ?? entry.uid
                case "gid": entry.gid = UInt32(value) ?? entry.gid
                case "mtime":
                    let parts = value.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                    entry.modificationTime = parts.first.flatMap { Int64($0) } ?? entry.modificationTime
                    if parts.count == 2 { entry.modificationNanoseconds = Int((parts[1] + "000000000").prefix(9)) ?? 0 }
                default:
                    if key.hasPrefix("GNU.sparse.") { throw invalid("PAX sparse files are not supported") }
                }
            }
            entry.extendedAttributes = paxAttributes
            return entry
        }
    }

    /// Passes the current entry's data to `consume` and skips its padding.
    func readData(_ entry: TarEntry, _ consume: (UnsafeRawBufferPointer) throws(ImageStoreError) -> Void) throws(ImageStoreError) {
        try reader.forward(entry.size, consume)
        let padding = (512 - entry.size % 512) % 512
        if padding > 0 { try reader.forward(padding) { _ throws(ImageStoreError) in } }
    }

    /// Longer names than Linux takes (PATH_MAX) are refused, so a stream of entries cannot hold
    /// megabytes each.
    static let nameLimit = 4096

    private func limitedName(_ bytes: some Collection<UInt8>, _ what: String) throws(ImageStoreError) -> String {
        guard bytes.count <= Self.nameLimit else { throw invalid("\(what) of \(bytes.count) bytes is longer than \(Self.nameLimit)") }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func readPadded(_ size: Int64) throws(ImageStoreError) -> [UInt8] {
        var data: [UInt8] = []
        try reader.forward(size) { raw throws(ImageStoreError) in data.append(contentsOf: raw) }
        let padding = (512 - size % 512) % 512
        if padding > 0 { try reader.forward(padding) { _ throws(ImageStoreError) in } }
        return data
    }

    private func verifyChecksum(_ header: [UInt8]) throws(ImageStoreError) {
        let stored = try number(header, 148, 8, "checksum")
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else { throw invalid("header checksum mismatch (not a tar archive, or corrupt)") }
    }

    private func string(_ header: [UInt8], _ offset: Int, _ length: Int) -> String {
        String(decoding: header[offset..<offset + length].prefix(while: { $0 != 0 }), as: UTF8.self)
    }

    /// An octal field (NUL/space padded) or a GNU base-256 field (high bit set).
    private func number(_ header: [UInt8], _ offset: Int, _ length: Int, _ field: String) throws(ImageStoreError) -> Int64 {
        let bytes = header[offset..<offset + length]
        if let first = bytes.first, first & 0x80 != 0 {
            guard first & 0x40 == 0 else { throw invalid("negative base-256 \(field)") }
            var value: Int64 = Int64(first & 0x3F)
            for byte in bytes.dropFirst() {
                guard value <= Int64.max >> 8 else { throw invalid("\(field) overflows") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var seenDigit = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value <= Int64.max >> 3 else { throw invalid("\(field) overflows") }
                value = value << 3 | Int64(byte - UInt8(ascii: "0"))
                seenDigit = true
            case 0, UInt8(ascii: " "):
                if seenDigit { return value }
            default:
                throw invalid("\(field) field is not octal")
            }
        }
        return value
    }

    /// PAX records `LEN key=value\n`; xattrs come as `SCHILY.xattr.NAME`.
    private func parsePAX(_ data: [UInt8]) throws(ImageStoreError) -> ([String: String], [(String, [UInt8])]) {
        var records: [String: String] = [:]
        var attributes: [(String, [UInt8])] = []
        var index = 0
        while index < data.count {
            guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > space - index,
                  length <= data.count - index, data[index + length - 1] == 0x0A,
                  let equals = data[(space + 1)..<(index + length)].firstIndex(of: UInt8(ascii: "=")) else {
                throw invalid("malformed PAX extended header")
            }
            let key = String(decoding: data[(space + 1)..<equals], as: UTF8.self)
            let value = Array(data[(equals + 1)..<(index + length - 1)])
            if key.hasPrefix("SCHILY.xattr.") {
                attributes.append((String(key.dropFirst("SCHILY.xattr.".count)), value))
            } else {
                records[key] = String(decoding: value, as: UTF8.self)
            }
            index += length
        }
        return (records, attributes)
    }
}
