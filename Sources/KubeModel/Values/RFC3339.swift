/// RFC 3339 parsing and UTC formatting with civil-calendar arithmetic (no time zone database).
enum RFC3339 {
    static func parse(_ text: String) throws(TimestampError) -> Timestamp {
        let bytes = Array(text.utf8)
        var position = 0
        func fail(_ problem: String) -> TimestampError { TimestampError(input: text, problem: problem) }
        func number(_ count: Int, _ what: String) throws(TimestampError) -> Int {
            guard position + count <= bytes.count else { throw fail("truncated \(what)") }
            var value = 0
            for byte in bytes[position..<position + count] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw fail("expected digits for \(what)") }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            position += count
            return value
        }
        func expect(_ characters: String, _ what: String) throws(TimestampError) {
            guard position < bytes.count, characters.utf8.contains(bytes[position]) else { throw fail("expected \(what)") }
            position += 1
        }
        let year = try number(4, "year")
        try expect("-", "'-' after the year")
        let month = try number(2, "month")
        try expect("-", "'-' after the month")
        let day = try number(2, "day")
        try expect("Tt ", "'T' between date and time")
        let hour = try number(2, "hour")
        try expect(":", "':' after the hour")
        let minute = try number(2, "minute")
        try expect(":", "':' after the minute")
        let second = try number(2, "second")
        var nanos = 0
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            var digits = 0
            while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                if digits < 9 { nanos = nanos * 10 + Int(bytes[position] - UInt8(ascii: "0")) }
                digits += 1
                position += 1
            }
            guard digits > 0 else { throw fail("expected digits after '.'") }
            for _ in digits..<max(digits, 9) { nanos *= 10 }
        }
        var offsetSeconds = 0
        guard position < bytes.count else { throw fail("missing time zone ('Z' or ±hh:mm)") }
        switch bytes[position] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[position] == UInt8(ascii: "-") ? -1 : 1
            position += 1
            let offsetHours = try number(2, "offset hours")
            try expect(":", "':' in the offset")
            let offsetMinutes = try number(2, "offset minutes")
            guard offsetHours < 24, offsetMinutes < 60 else { throw fail("offset out of range") }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        default:
            throw fail("missing time zone ('Z' or ±hh:mm)")
        }
        guard position == bytes.count else { throw fail("unexpected text after the time") }
        guard (1...12).contains(month) else { throw fail("month \(month) out of range") }
        guard (1...daysInMonth(year: year, month: month)).contains(day) else { throw fail("day \(day) out of range") }
        guard hour < 24, minute < 60, second < 61 else { throw fail("time of day out of range") }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetSeconds)
        return Timestamp(seconds: seconds, nanoseconds: Int32(nanos))
    }

    /// The RFC 3339 text, for times within years 0000–9999 (others are clamped to those ends:
    /// a protobuf body can carry any Int64 seconds, and the day arithmetic must not trap).
    static func format(_ timestamp: Timestamp, fractionDigits: Int) -> String {
        let seconds = min(max(timestamp.seconds, Timestamp.earliestRepresentable.seconds), Timestamp.latestRepresentable.seconds)
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = Int(seconds - days * 86400)
        let (year, month, day) = civilFromDays(Int(days))
        var text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T"
        text += pad(secondOfDay / 3600, 2) + ":" + pad(secondOfDay / 60 % 60, 2) + ":" + pad(secondOfDay % 60, 2)
        if fractionDigits > 0 {
            var fraction = min(max(Int(timestamp.nanoseconds), 0), 999_999_999)
            for _ in fractionDigits..<9 { fraction /= 10 }
            text += "." + pad(fraction, fractionDigits)
        }
        return text + "Z"
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    private static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    private static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
