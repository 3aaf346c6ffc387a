import FoundationEssentials
import KubeModel

/// A time zone's UTC offsets from the system's tz database (`/usr/share/zoneinfo`, TZif
/// files), for cron jobs' `timeZone`. Times after the file's last transition keep its offset.
struct ZoneRules: Sendable {
    /// Transition instants (UTC seconds) and the offset in effect from each.
    let transitions: [(at: Int64, offset: Int64)]
    let initialOffset: Int64

    static let utc = ZoneRules(transitions: [], initialOffset: 0)
    static let databaseDirectory = "/usr/share/zoneinfo"

    /// Whether a name can be a zone name at all (no path tricks: `..`, absolute paths).
    static func isPlausibleName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && !name.hasPrefix("/") && !name.split(separator: "/").contains("..") && !name.split(separator: "/").contains(".")
            && name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
                || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }
    }

    /// The zone's rules; nil for a name the database does not have (or an unreadable file).
    static func load(_ name: String?, directory: String = databaseDirectory) -> ZoneRules? {
        guard let name, name != "UTC", name != "Etc/UTC" else { return .utc }
        guard isPlausibleName(name), name != "Local",
              let data = FileManager.default.contents(atPath: "\(directory)/\(name)"), data.count <= 1 << 20 else { return nil }
        return parse(Array(data))
    }

    /// Reads a TZif file (the 64-bit block of version 2 and later, else the 32-bit one).
    static func parse(_ bytes: [UInt8]) -> ZoneRules? {
        func count(_ at: Int) -> Int? {
            guard at + 4 <= bytes.count else { return nil }
            return Int(UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3]))
        }
        func signed(_ at: Int, width: Int) -> Int64 {
            var value: UInt64 = 0
            for index in 0..<width { value = value << 8 | UInt64(bytes[at + index]) }
            return width == 4 ? Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: value))) : Int64(bitPattern: value)
        }
        guard bytes.count >= 44, bytes[0..<4] == [0x54, 0x5A, 0x69, 0x66] else { return nil }
        var header = 0
        var width = 4
        func sizes(_ at: Int) -> (isUT: Int, isStd: Int, leap: Int, time: Int, type: Int, chars: Int)? {
            guard let isUT = count(at + 20), let isStd = count(at + 24), let leap = count(at + 28), let time = count(at + 32),
                  let type = count(at + 36), let chars = count(at + 40), time <= 100_000, type >= 1, type <= 256 else { return nil }
            return (isUT, isStd, leap, time, type, chars)
        }
        guard var counts = sizes(0) else { return nil }
        if bytes[4] >= UInt8(ascii: "2") {
            // Skip the 32-bit block to the 64-bit one.
            let skip = 44 + counts.time * 5 + counts.type * 6 + counts.chars + counts.leap * 8 + counts.isStd + counts.isUT
            guard let second = sizes(skip) else { return nil }
            header = skip
            counts = second
            width = 8
        }
        let timesStart = header + 44
        let indexStart = timesStart + counts.time * width
        let typesStart = indexStart + counts.time
        guard typesStart + counts.type * 6 <= bytes.count else { return nil }
        var offsets: [Int64] = []
        for index in 0..<counts.type { offsets.append(signed(typesStart + index * 6, width: 4)) }
        var transitions: [(at: Int64, offset: Int64)] = []
        for index in 0..<counts.time {
            let type = Int(bytes[indexStart + index])
            guard type < offsets.count else { return nil }
            transitions.append((signed(timesStart + index * width, width: width), offsets[type]))
        }
        guard transitions.isEmpty || zip(transitions, transitions.dropFirst()).allSatisfy({ $0.0.at < $0.1.at }) else { return nil }
        return ZoneRules(transitions: transitions, initialOffset: offsets[0])
    }

    /// The offset in effect at a UTC instant.
    func offset(at seconds: Int64) -> Int64 {
        var low = 0
        var high = transitions.count
        while low < high {
            let middle = (low + high) / 2
            if transitions[middle].at <= seconds { low = middle + 1 } else { high = middle }
        }
        return low == 0 ? initialOffset : transitions[low - 1].offset
    }

    /// The wall time of a UTC instant.
    func wallTime(at seconds: Int64) -> CronSchedule.WallTime {
        CronSchedule.WallTime(epochSeconds: seconds, offset: offset(at: seconds))
    }

    /// The UTC instant of a wall time; a time that does not exist (a spring-forward gap) is
    /// read with the offset before the gap, so it lands just after it.
    func instant(of wall: CronSchedule.WallTime) -> Int64 {
        let guess = wall.epochSeconds(offset: 0)
        let before = offset(at: guess - 86_400)
        let first = wall.epochSeconds(offset: before)
        if offset(at: first) == before { return first }
        let after = offset(at: guess + 86_400)
        let second = wall.epochSeconds(offset: after)
        return offset(at: second) == after ? second : first
    }
}
