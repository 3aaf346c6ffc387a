/// A cron schedule in the standard five fields (`minute hour day-of-month month day-of-week`,
/// with lists, ranges, steps, month and weekday names, `*` and `?`) or a macro (`@hourly`,
/// `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`), as kube's cron job
/// controller parses them. Times are wall-clock minutes in the cron job's time zone.
public struct CronSchedule: Sendable, Hashable {
    var minutes: Set<Int>
    var hours: Set<Int>
    var daysOfMonth: Set<Int>
    var months: Set<Int>
    var daysOfWeek: Set<Int>
    /// Whether day-of-month or day-of-week was `*` (then both must match, else either).
    var anyDayOfMonth: Bool
    var anyDayOfWeek: Bool

    /// A wall-clock minute.
    public struct WallTime: Sendable, Hashable, Comparable {
        public var year: Int
        public var month: Int
        public var day: Int
        public var hour: Int
        public var minute: Int

        public init(year: Int, month: Int, day: Int, hour: Int, minute: Int) {
            self.year = year
            self.month = month
            self.day = day
            self.hour = hour
            self.minute = minute
        }

        public static func < (lhs: WallTime, rhs: WallTime) -> Bool {
            (lhs.year, lhs.month, lhs.day, lhs.hour, lhs.minute) < (rhs.year, rhs.month, rhs.day, rhs.hour, rhs.minute)
        }
    }

    /// Parses a schedule; the error says what is wrong, in the words kube-apiserver uses.
    public init(parsing text: String) throws(CronScheduleError) {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("TZ=") || trimmed.hasPrefix("CRON_TZ=") {
            throw CronScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
        }
        let macros = ["@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                      "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"]
        let expanded = trimmed.hasPrefix("@") ? macros[trimmed.lowercased()] : trimmed
        guard let expanded else { throw CronScheduleError("unrecognized descriptor: \(trimmed.prefix(64))") }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else { throw CronScheduleError("expected exactly 5 fields, found \(fields.count): \(trimmed.prefix(64))") }
        minutes = try Self.field(fields[0], 0...59, names: [:])
        hours = try Self.field(fields[1], 0...23, names: [:])
        daysOfMonth = try Self.field(fields[2], 1...31, names: [:])
        months = try Self.field(fields[3], 1...12, names: ["jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12])
        daysOfWeek = try Self.field(fields[4], 0...6, names: ["sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6])
        // As kube's parser: `*` or `?` (with no step above 1) leaves the day open.
        anyDayOfMonth = ["*", "?", "*/1", "?/1"].contains(fields[2])
        anyDayOfWeek = ["*", "?", "*/1", "?/1"].contains(fields[4])
    }

    private static func field(_ text: String, _ range: ClosedRange<Int>, names: [String: Int]) throws(CronScheduleError) -> Set<Int> {
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            var rangeText = part
            var step = 1
            if let slash = part.firstIndex(of: "/") {
                rangeText = String(part[..<slash])
                let stepText = part[part.index(after: slash)...]
                guard stepText.count <= 5, let parsed = Int(stepText), parsed > 0 else {
                    throw CronScheduleError("bad step in \"\(part.prefix(32))\"")
                }
                step = parsed
            }
            var low: Int
            var high: Int
            if rangeText == "*" || rangeText == "?" {
                (low, high) = (range.lowerBound, range.upperBound)
            } else if let dash = rangeText.firstIndex(of: "-") {
                low = try value(String(rangeText[..<dash]), range, names)
                high = try value(String(rangeText[rangeText.index(after: dash)...]), range, names)
                guard low <= high else { throw CronScheduleError("beginning of range (\(low)) beyond end of range (\(high)): \(part.prefix(32))") }
            } else {
                low = try value(rangeText, range, names)
                high = part.contains("/") ? range.upperBound : low
            }
            for number in stride(from: low, through: high, by: step) { values.insert(number) }
        }
        return values
    }

    private static func value(_ text: String, _ range: ClosedRange<Int>, _ names: [String: Int]) throws(CronScheduleError) -> Int {
        if let named = names[text.lowercased()] { return named }
        guard !text.isEmpty, text.count <= 4, let number = Int(text) else { throw CronScheduleError("failed to parse int from \(text.prefix(32))") }
        guard range.contains(number) else { throw CronScheduleError("\(number) out of range [\(range.lowerBound), \(range.upperBound)]") }
        return number
    }

    /// Whether the schedule fires at this wall-clock minute.
    public func matches(_ time: WallTime) -> Bool {
        minutes.contains(time.minute) && hours.contains(time.hour) && months.contains(time.month) && matchesDay(time)
    }

    func matchesDay(_ time: WallTime) -> Bool {
        let dayOfMonth = daysOfMonth.contains(time.day)
        let dayOfWeek = daysOfWeek.contains(Self.weekday(year: time.year, month: time.month, day: time.day))
        if anyDayOfMonth || anyDayOfWeek { return dayOfMonth && dayOfWeek }
        return dayOfMonth || dayOfWeek
    }

    /// The first wall-clock minute after `time` the schedule fires at, looking up to five years
    /// ahead (nil for a schedule that never fires, such as February 30).
    public func next(after time: WallTime) -> WallTime? {
        var day = (year: time.year, month: time.month, day: time.day)
        for _ in 0..<(5 * 366) {
            let candidate = WallTime(year: day.year, month: day.month, day: day.day, hour: 0, minute: 0)
            if months.contains(day.month), matchesDay(candidate) {
                for hour in hours.sorted() {
                    for minute in minutes.sorted() {
                        let moment = WallTime(year: day.year, month: day.month, day: day.day, hour: hour, minute: minute)
                        if moment > time { return moment }
                    }
                }
            }
            day.day += 1
            if day.day > Self.daysIn(year: day.year, month: day.month) {
                day.day = 1
                day.month += 1
                if day.month > 12 {
                    day.month = 1
                    day.year += 1
                }
            }
        }
        return nil
    }

    /// The last wall-clock minute at or before `time` the schedule fires at, looking up to five
    /// years back.
    public func previous(atOrBefore time: WallTime) -> WallTime? {
        var day = (year: time.year, month: time.month, day: time.day)
        for _ in 0..<(5 * 366) {
            let candidate = WallTime(year: day.year, month: day.month, day: day.day, hour: 0, minute: 0)
            if months.contains(day.month), matchesDay(candidate) {
                for hour in hours.sorted(by: >) {
                    for minute in minutes.sorted(by: >) {
                        let moment = WallTime(year: day.year, month: day.month, day: day.day, hour: hour, minute: minute)
                        if moment <= time { return moment }
                    }
                }
            }
            day.day -= 1
            if day.day < 1 {
                day.month -= 1
                if day.month < 1 {
                    day.month = 12
                    day.year -= 1
                }
                day.day = Self.daysIn(year: day.year, month: day.month)
            }
        }
        return nil
    }

    static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Day of the week, 0 = Sunday (Sakamoto's method).
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        let offsets = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4]
        let y = month < 3 ? year - 1 : year
        return ((y + y / 4 - y / 100 + y / 400 + offsets[month - 1] + day) % 7 + 7) % 7
    }
}

/// Why a cron schedule is not valid.
public struct CronScheduleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension CronSchedule.WallTime {
    /// The wall time of `seconds` since the epoch at a zone offset (seconds east of UTC).
    public init(epochSeconds seconds: Int64, offset: Int64) {
        let local = seconds + offset
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondOfDay = local - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.init(year: Int(year), month: Int(month), day: Int(day), hour: Int(secondOfDay / 3600), minute: Int(secondOfDay % 3600 / 60))
    }

    /// Seconds since the epoch of this wall time read at a zone offset.
    public func epochSeconds(offset: Int64) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + Int64(hour) * 3600 + Int64(minute) * 60 - offset
    }
}
