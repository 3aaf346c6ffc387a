import KubeModel
import Testing

@testable import ControlPlane

/// Cron syntax as kube's controller reads it, and wall-clock time in real zones.
struct CronScheduleTests {
    typealias Wall = CronSchedule.WallTime

    @Test func fieldsListsRangesStepsAndNames() throws {
        let schedule = try CronSchedule(parsing: "*/15 9-17 * jan,JUL mon-fri")
        #expect(schedule.matches(Wall(year: 2026, month: 7, day: 6, hour: 9, minute: 45)))  // a Monday
        #expect(!schedule.matches(Wall(year: 2026, month: 7, day: 5, hour: 9, minute: 45)))  // a Sunday
        #expect(!schedule.matches(Wall(year: 2026, month: 7, day: 6, hour: 18, minute: 0)))
        #expect(!schedule.matches(Wall(year: 2026, month: 8, day: 3, hour: 9, minute: 0)))
        // Day of month and day of week both restricted: either matches.
        let either = try CronSchedule(parsing: "0 0 13 * 5")
        #expect(either.matches(Wall(year: 2026, month: 1, day: 13, hour: 0, minute: 0)))  // Tuesday the 13th
        #expect(either.matches(Wall(year: 2026, month: 1, day: 2, hour: 0, minute: 0)))  // a Friday
        #expect(try CronSchedule(parsing: "@hourly") == CronSchedule(parsing: "0 * * * *"))
    }

    @Test func nextAndPreviousTimes() throws {
        let nightly = try CronSchedule(parsing: "30 2 * * *")
        #expect(nightly.next(after: Wall(year: 2026, month: 12, day: 31, hour: 23, minute: 59)) == Wall(year: 2027, month: 1, day: 1, hour: 2, minute: 30))
        #expect(nightly.previous(atOrBefore: Wall(year: 2027, month: 1, day: 1, hour: 2, minute: 29)) == Wall(year: 2026, month: 12, day: 31, hour: 2, minute: 30))
        let leap = try CronSchedule(parsing: "0 0 29 2 *")
        #expect(leap.next(after: Wall(year: 2026, month: 3, day: 1, hour: 0, minute: 0)) == Wall(year: 2028, month: 2, day: 29, hour: 0, minute: 0))
        #expect(try CronSchedule(parsing: "0 0 30 2 *").next(after: Wall(year: 2026, month: 1, day: 1, hour: 0, minute: 0)) == nil)
    }

    @Test func badSchedulesAreNamed() {
        for (text, expected) in [("61 * * * *", "out of range"), ("* * *", "expected exactly 5 fields"), ("*/0 * * * *", "bad step"),
                                 ("TZ=UTC 0 * * * *", "use timeZone field"), ("@fortnightly", "unrecognized descriptor"), ("5-1 * * * *", "beyond end of range"),
                                 ("99999999999999999999 * * * *", "failed to parse int")] {
            #expect(throws: CronScheduleError.self, "\(text)") { try CronSchedule(parsing: text) }
            do { _ = try CronSchedule(parsing: text) } catch { #expect(error.description.contains(expected), "\(text): \(error)") }
        }
    }

    @Test func epochArithmeticRoundTrips() {
        for seconds: Int64 in [0, 951_782_400, 1_798_761_599, -86_400, 4_102_444_800] {
            let wall = Wall(epochSeconds: seconds, offset: 3600)
            #expect(wall.epochSeconds(offset: 3600) == seconds - seconds % 60, "\(seconds) → \(wall)")
        }
        #expect(Wall(epochSeconds: 951_782_400, offset: 0) == Wall(year: 2000, month: 2, day: 29, hour: 0, minute: 0))
    }

    @Test(.enabled(if: ZoneRules.load("Europe/Berlin") != nil, "no tz database here"))
    func zonesFollowDaylightSaving() throws {
        let berlin = try #require(ZoneRules.load("Europe/Berlin"))
        // 2026-03-29 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST.
        #expect(berlin.offset(at: 1_774_745_999) == 3600)
        #expect(berlin.offset(at: 1_774_746_000) == 7200)
        #expect(berlin.instant(of: Wall(year: 2026, month: 7, day: 1, hour: 3, minute: 0)) == 1_782_867_600)
        #expect(ZoneRules.load("../../etc/passwd") == nil && ZoneRules.load("/etc/passwd") == nil && ZoneRules.load("Mars/Olympus") == nil)
        #expect(ZoneRules.load(nil)?.offset(at: 0) == 0)
    }
}
