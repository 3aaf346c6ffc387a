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
    /// domain, with recursion available; cut to `limit` bytes with TC set when too long.
    public func response(code: ResponseCode, answers: [Answer], authoritative: Bool, limit: Int = 512) -> [UInt8] {
        var out: [UInt8] = []
        func u16(_ value: UInt16) { out += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        func u32(_ value: UInt32) { u16(UInt16(value >> 16)); u16(UInt16(value & 0xFFFF)) }
        func name(_ labels: [String]) {
            for label in labels {
                let bytes = Array(label.utf8.prefix(63))
                out.append(UInt8(bytes.count))
                out += bytes
            }
            out.append(0)
        }
        func header(answerCount: Int, truncated: Bool) {
            out = []
            u16(id)
            var responseFlags: UInt16 = 0x8000 | (flags & 0x0100) | 0x0080 | UInt16(code.rawValue)
            if authoritative { responseFlags |= 0x0400 }
            if truncated { responseFlags |= 0x0200 }
            u16(responseFlags)
            u16(1); u16(UInt16(answerCount)); u16(0); u16(0)
            name(self.name)
            u16(type); u16(questionClass)
        }
        var included = answers.count
        while true {
            header(answerCount: included, truncated: included < answers.count)
            for answer in answers.prefix(included) {
                switch answer {
                case .a(let owner, let address, let ttl):
                    name(owner); u16(RecordType.a.rawValue); u16(1); u32(ttl); u16(4); u32(address)
                case .cname(let owner, let target, let ttl):
                    name(owner); u16(RecordType.cname.rawValue); u16(1); u32(ttl)
                    let length = target.reduce(1) { $0 + 1 + min($1.utf8.count, 63) }
                    u16(UInt16(length)); name(target)
                case .srv(let owner, let priority, let weight, let port, let target, let ttl):
                    name(owner); u16(RecordType.srv.rawValue); u16(1); u32(ttl)
                    let length = 6 + target.reduce(1) { $0 + 1 + min($1.utf8.count, 63) }
                    u16(UInt16(length)); u16(priority); u16(weight); u16(port); name(target)
                }
            }
            if out.count <= limit || included == 0 { return out }
            included -= 1
        }
    }
}
