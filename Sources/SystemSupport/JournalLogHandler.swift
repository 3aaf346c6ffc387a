import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A swift-log handler that writes to journald over its native protocol (datagrams of
/// `FIELD=value` lines to `/run/systemd/journal/socket`), with the priority, the source location
/// and the metadata as structured fields (`IOTKUBE_<KEY>`). Falls back to stderr when journald
/// cannot be reached.
public struct JournalLogHandler: LogHandler {
    public static let socketPath = "/run/systemd/journal/socket"

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let identifier: String
    let label: String

    public init(label: String, identifier: String) {
        self.label = label
        self.identifier = identifier
    }

    /// Whether logs should go to journald: the service runs under systemd (`JOURNAL_STREAM`)
    /// or the journal socket exists.
    public static var journalAvailable: Bool {
        getenv("JOURNAL_STREAM") != nil || access(socketPath, W_OK) == 0
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("MESSAGE", "\(event.message)"), ("PRIORITY", String(Self.priority(event.level))), ("SYSLOG_IDENTIFIER", identifier),
            ("CODE_FILE", event.file), ("CODE_LINE", String(event.line)), ("CODE_FUNC", event.function), ("IOTKUBE_LOGGER", label),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { _, new in new }) {
            fields.append(("IOTKUBE_" + Self.fieldName(key), "\(value)"))
        }
        if !Self.send(Self.encode(fields)) {
            let line = "\(identifier)[\(event.level)]: \(event.message)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }

    /// syslog priorities: critical 2, error 3, warning 4, notice 5, info 6, debug/trace 7.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: return 2
        case .error: return 3
        case .warning: return 4
        case .notice: return 5
        case .info: return 6
        case .debug, .trace: return 7
        }
    }

    /// Journal field names: upper-case letters, digits and '_'.
    static func fieldName(_ key: String) -> String {
        String(key.uppercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
    }

    /// `NAME=value\n`, or for values with newlines the binary-safe `NAME\n<le64 length>value\n`.
    static func encode(_ fields: [(String, String)]) -> [UInt8] {
        var datagram: [UInt8] = []
        for (name, value) in fields {
            let bytes = Array(value.utf8.prefix(48 * 1024))
            if bytes.contains(0x0A) {
                datagram += Array(name.utf8) + [0x0A]
                withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { datagram += Array($0) }
                datagram += bytes + [0x0A]
            } else {
                datagram += Array(name.utf8) + [UInt8(ascii: "=")] + bytes + [0x0A]
            }
        }
        return datagram
    }

    /// Sends one datagram to journald without blocking; false when it could not be delivered.
    static func send(_ datagram: [UInt8]) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in socketPath.utf8.enumerated() { buffer[index] = byte }
        }
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                datagram.withUnsafeBytes {
                    sendto(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT), target, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        return sent == datagram.count
    }
}
