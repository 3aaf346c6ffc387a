import Testing

@testable import KubeModel

struct TimestampTests {
    @Test func parsesRFC3339Variants() throws {
        let base = try Timestamp(rfc3339: "2026-11-23T10:00:00Z")
        #expect(base.seconds == 1_795_428_000)
        #expect(base.nanoseconds == 0)
        #expect(try Timestamp(rfc3339: "2026-11-23T11:30:00+01:30") == base)
        #expect(try Timestamp(rfc3339: "2026-11-23T05:00:00-05:00") == base)
        let fractional = try Timestamp(rfc3339: "2026-11-23T10:00:00.123456789Z")
        #expect(fractional.nanoseconds == 123_456_789)
        #expect(try Timestamp(rfc3339: "2026-11-23T10:00:00.5Z").nanoseconds == 500_000_000)
        #expect(try Timestamp(rfc3339: "2026-11-23T10:00:00.1234567891Z").nanoseconds == 123_456_789)
        #expect(try Timestamp(rfc3339: "1970-01-01T00:00:00Z").seconds == 0)
        #expect(try Timestamp(rfc3339: "1969-12-31T23:59:59Z").seconds == -1)
        #expect(try Timestamp(rfc3339: "2024-02-29T00:00:00Z").description == "2024-02-29T00:00:00Z")
        #expect(try Timestamp(rfc3339: "2000-03-01t00:00:00z").description == "2000-03-01T00:00:00Z")
    }

    @Test func formatsWholeSecondsAndMicroseconds() throws {
        let time = try Timestamp(rfc3339: "2026-11-23T10:00:00.123456789+02:00")
        #expect(time.description == "2026-11-23T08:00:00Z")
        #expect(MicroTimestamp(time).description == "2026-11-23T08:00:00.123456Z")
        #expect(MicroTimestamp(Timestamp(seconds: 0)).description == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp(seconds: -1).description == "1969-12-31T23:59:59Z")
    }

    @Test func roundTripsEveryDayOfFourHundredYears() throws {
        var seconds: Int64 = -2_208_988_800  // 1900-01-01
        for _ in 0..<(400 * 366) {
            let text = Timestamp(seconds: seconds).description
            #expect(try Timestamp(rfc3339: text).seconds == seconds)
            seconds += 86_400 + 3_661
            if seconds > 4_102_444_800 { break }  // 2100-01-01
        }
    }

    @Test func rejectsMalformedTimes() {
        for bad in ["", "2026-11-23", "2026-11-23T10:00:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
                    "2026-11-23T24:00:00Z", "2026-11-23T10:00:00.Z", "2026-11-23T10:00:00+2:00", "2026-11-23T10:00:00Zjunk", "yesterday"] {
            #expect(throws: TimestampError.self, "\(bad)") { try Timestamp(rfc3339: bad) }
        }
    }
}
