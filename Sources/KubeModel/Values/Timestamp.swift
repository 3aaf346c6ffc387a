import FoundationEssentials

/// A point in time as Kubernetes writes it: RFC 3339 in UTC (`metav1.Time`).
///
/// Parses with or without fractional seconds and with any UTC offset; writes whole seconds with
/// `Z`, as the API server does. Nanoseconds are kept in memory so comparisons stay exact.
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// Nanoseconds within the second, 0 ..< 1_000_000_000.
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(_ date: Date) {
        let interval = date.timeIntervalSince1970
        let whole = interval.rounded(.down)
        self.init(seconds: Int64(whole), nanoseconds: Int32(min(999_999_999, ((interval - whole) * 1e9).rounded())))
    }

    /// The current time.
    public static func now() -> Timestamp { Timestamp(Date()) }

    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9) }

    /// Parses an RFC 3339 date-time (`2024-03-01T12:00:00Z`, `…T12:00:00.123456+01:00`).
    public init(rfc3339 text: String) throws(TimestampError) {
        self = try RFC3339.parse(text)
    }

    /// Whole seconds, UTC: `2024-03-01T12:00:00Z`.
    public var description: String { RFC3339.format(self, fractionDigits: 0) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    /// The first instant RFC 3339 can write (0000-01-01T00:00:00Z).
    public static let earliestRepresentable = Timestamp(seconds: -62_167_219_200)
    /// The last instant RFC 3339 can write (9999-12-31T23:59:59Z).
    public static let latestRepresentable = Timestamp(seconds: 253_402_300_799)

    /// This time plus a number of seconds, clamped to the years RFC 3339 can write (0000–9999),
    /// so any delta from outside gives a time that can be stored and read back; never traps.
    public func adding(seconds delta: Int64) -> Timestamp {
        let sum = seconds.addingSaturated(delta)
        if sum > Self.latestRepresentable.seconds { return Self.latestRepresentable }
        if sum < Self.earliestRepresentable.seconds { return Self.earliestRepresentable }
        return Timestamp(seconds: sum, nanoseconds: nanoseconds)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try RFC3339.parse(text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// A timestamp written with microseconds (`metav1.MicroTime`): Lease renew times and Event times.
public struct MicroTimestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var timestamp: Timestamp

    public init(_ timestamp: Timestamp) { self.timestamp = timestamp }
    public static func now() -> MicroTimestamp { MicroTimestamp(.now()) }

    /// `2024-03-01T12:00:00.123456Z`.
    public var description: String { RFC3339.format(timestamp, fractionDigits: 6) }

    public static func < (lhs: MicroTimestamp, rhs: MicroTimestamp) -> Bool { lhs.timestamp < rhs.timestamp }

    public init(from decoder: any Decoder) throws { timestamp = try Timestamp(from: decoder) }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Why a string is not an RFC 3339 timestamp.
public struct TimestampError: Error, Sendable, Equatable, CustomStringConvertible {
    public var input: String
    public var problem: String
    public var description: String { "\"\(input)\" is not an RFC 3339 time: \(problem)" }
}
