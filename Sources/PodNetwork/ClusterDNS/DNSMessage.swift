/// The parts of a DNS message (RFC 1035) the cluster DNS reads and writes: the header, one
/// question, and answers of types A, CNAME and SRV. Parsing is bounded: a message is at most
/// 65535 bytes, a name at most 255 bytes of at most 63-byte labels, compression pointers only
/// point backwards (no loops).
public struct DNSMessage: Sendable, Equatable {
    public enum RecordType: UInt16, Sendable {
        case a = 1, cname = 5, soa = 6, ptr = 12, aaaa = 28, srv = 33, any = 255
    }

    public enum ResponseCode: UInt8, Sendable {
        case noError = 0, formatError = 1, serverFailure = 2, nameError = 3, notImplemented = 4, refused = 5
    }

    /// An answer record.
    public enum Answer: Sendable, Equatable {
        case a(name: [String], address: UInt32, ttl: UInt32)
        case cname(name: [String], target: [String], ttl: UInt32)
        case srv(name: [String], priority: UInt16, weight: UInt16, port: UInt16, target: [String], ttl: UInt32)
    }

    public var id: UInt16
    public var flags: UInt16
    /// The question's name as lower-cased labels (`["web", "default", "svc", "cluster", "local"]`).
    public var name: [String]
    public var type: UInt16
    public var questionClass: UInt16

    public var recursionDesired: Bool { flags & 0x0100 != 0 }

    public struct ParseError: Error, Sendable {
        public var reason: String
    }

    /// Reads a query: a header and exactly one question (what resolvers send).
    public init(query bytes: [UInt8]) throws(ParseError) {
        guard bytes.count >= 12 else { throw ParseError(reason: "shorter than a header") }
        id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        flags = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        guard flags & 0x8000 == 0 else { throw ParseError(reason: "not a query") }
        let questions = UInt16(bytes[4]) << 8 | UInt16(bytes[5])
        guard questions == 1 else { throw ParseError(reason: "\(questions) questions") }
        var offset = 12
        name = try Self.readName(bytes, &offset)
        guard offset + 4 <= bytes.count else { throw ParseError(reason: "truncated question") }
        type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        questionClass = UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
    }

    /// A name at `offset` (advanced past it), following compression pointers backwards only.
    static func readName(_ bytes: [UInt8], _ offset: inout Int) throws(ParseError) -> [String] {
        var labels: [String] = []
        var length = 0
        var position = offset
        var jumped = false
        var jumps = 0
        while true {
            guard position < bytes.count else { throw ParseError(reason: "truncated name") }
            let size = Int(bytes[position])
            if size & 0xC0 == 0xC0 {
                guard position + 1 < bytes.count else { throw ParseError(reason: "truncated pointer") }
                let target = (size & 0x3F) << 8 | Int(bytes[position + 1])
                jumps += 1
                guard target < position, jumps <= 64 else { throw ParseError(reason: "bad compression pointer") }
                if !jumped { offset = position + 2 }
                jumped = true
                position = target
                continue
            }
            guard size & 0xC0 == 0 else { throw ParseError(reason: "bad label type") }
            if size == 0 {
                if !jumped { offset = position + 1 }
                return labels
            }
            length += size + 1
            guard length <= 255, position + 1 + size <= bytes.count else { throw ParseError(reason: "name too long or truncated") }
            let label = bytes[(position + 1)..<(position + 1 + size)].map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
            labels.append(String(decoding: label, as: UTF8.self))
            position += 1 + size
        }
    }

    /// The response to this query: `answers` under `code`, authoritative for the cluster
    /// domain, with recursion available; cut to `limit` bytes with TC set when too long. An
    /// answer about the question's name points back at it (compression); names longer than 255
    /// bytes are left out.
    public func response(code: ResponseCode, answers: [Answer], authoritative: Bool, limit: Int = 512) -> [UInt8] {
        func encodedName(_ labels: [String]) -> [UInt8]? {
            if labels == name { return [0xC0, 12] }
            var bytes: [UInt8] = []
            for label in labels {
                let text = Array(label.utf8)
                guard (1...63).contains(text.count) else { return nil }
                bytes.append(UInt8(text.count))
                bytes += text
            }
            bytes.append(0)
            return bytes.count <= 255 ? bytes : nil
        }
        func u16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xFF)] }
        func u32(_ value: UInt32) -> [UInt8] { u16(UInt16(value >> 16)) + u16(UInt16(value & 0xFFFF)) }
        var records: [[UInt8]] = []
        var size = 0
        var truncated = false
        var question = [UInt8]()
        for label in name { question.append(UInt8(clamping: label.utf8.count)); question += Array(label.utf8) }
        question.append(0)
        question += u16(type) + u16(questionClass)
        let budget = limit - 12 - question.count
        for answer in answers {
            var record: [UInt8]
            switch answer {
            case .a(let owner, let address, let ttl):
                guard let owner = encodedName(owner) else { continue }
                record = owner + u16(RecordType.a.rawValue) + u16(1) + u32(ttl) + u16(4) + u32(address)
            case .cname(let owner, let target, let ttl):
                guard let owner = encodedName(owner), let target = encodedName(target) else { continue }
                record = owner + u16(RecordType.cname.rawValue) + u16(1) + u32(ttl) + u16(UInt16(target.count)) + target
            case .srv(let owner, let priority, let weight, let port, let target, let ttl):
                guard let owner = encodedName(owner), let target = encodedName(target) else { continue }
                record = owner + u16(RecordType.srv.rawValue) + u16(1) + u32(ttl) + u16(UInt16(6 + target.count)) + u16(priority) + u16(weight) + u16(port) + target
            }
            guard size + record.count <= budget else {
                truncated = true
                break
            }
            size += record.count
            records.append(record)
        }
        var responseFlags: UInt16 = 0x8000 | (flags & 0x0100) | 0x0080 | UInt16(code.rawValue)
        if authoritative { responseFlags |= 0x0400 }
        if truncated { responseFlags |= 0x0200 }
        var out = u16(id) + u16(responseFlags) + u16(1) + u16(UInt16(clamping: records.count)) + u16(0) + u16(0)
        out += question
        for record in records { out += record }
        return out
    }
}
