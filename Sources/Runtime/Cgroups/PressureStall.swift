/// Pressure stall information (PSI) for one resource, as `/proc/pressure/memory` and a cgroup's
/// `memory.pressure` give it: the share of time some task (`some`) or every task (`full`) was
/// stalled waiting for it, averaged over 10, 60 and 300 s, and the total stall in microseconds.
public struct PressureStall: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        /// Percentages, 0 to 100.
        public var avg10: Double = 0
        public var avg60: Double = 0
        public var avg300: Double = 0
        public var totalMicroseconds: Int64 = 0

        public init(avg10: Double = 0, avg60: Double = 0, avg300: Double = 0, totalMicroseconds: Int64 = 0) {
            self.avg10 = avg10
            self.avg60 = avg60
            self.avg300 = avg300
            self.totalMicroseconds = totalMicroseconds
        }
    }

    public var some = Line()
    public var full = Line()

    /// Parses "some avg10=1.00 avg60=0.50 avg300=0.10 total=12345" and its "full" line; nil when
    /// neither is there. Values out of range are clamped: the file is the kernel's, but a
    /// prepared tree in a test or container may say anything.
    public init?(parsing text: String) {
        var found = false
        for row in text.split(separator: "\n") {
            let fields = row.split(separator: " ")
            guard let kind = fields.first, kind == "some" || kind == "full" else { continue }
            var line = Line()
            for field in fields.dropFirst() {
                let pair = field.split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { continue }
                switch pair[0] {
                case "avg10": line.avg10 = Self.percent(pair[1])
                case "avg60": line.avg60 = Self.percent(pair[1])
                case "avg300": line.avg300 = Self.percent(pair[1])
                case "total": line.totalMicroseconds = max(0, Int64(pair[1]) ?? 0)
                default: break
                }
            }
            if kind == "some" { some = line } else { full = line }
            found = true
        }
        if !found { return nil }
    }

    static func percent(_ text: Substring) -> Double {
        guard let value = Double(text), value.isFinite else { return 0 }
        return min(100, max(0, value))
    }
}
