#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel

/// The two clocks a pod worker reads. Boards without a real-time clock boot with a wrong date
/// and NTP corrects it later, by up to years: every decision about time (termination deadlines,
/// back-off, the active deadline, probes' initial delays, periodic work) is taken on
/// `sinceBoot`, seconds since boot (CLOCK_BOOTTIME: a wall-clock change does not move it, it
/// counts suspend, and it is the same for every process of one boot, so it outlives an agent
/// restart). `wall` only stamps what is reported.
public struct PodClock: Sendable {
    public var sinceBoot: @Sendable () -> Int64
    public var wall: @Sendable () -> Timestamp

    public init(sinceBoot: @escaping @Sendable () -> Int64, wall: @escaping @Sendable () -> Timestamp) {
        self.sinceBoot = sinceBoot
        self.wall = wall
    }

    /// The machine's clocks.
    public static let system = PodClock(sinceBoot: { bootSeconds() }, wall: { Timestamp.now() })

    /// Seconds since boot, CLOCK_BOOTTIME.
    public static func bootSeconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        return Int64(time.tv_sec)
    }

    /// When (since boot) the wall time `timestamp` was, as this moment's two readings tell:
    /// never later than now, negative before this boot. Only for times that were not seen
    /// happen (a status from before a restart or a reboot): a wall-clock jump since then shifts
    /// the answer.
    public func sinceBoot(ofWall timestamp: Timestamp) -> Int64 {
        let now = sinceBoot()
        let age = wall().seconds.subtractingReportingOverflow(timestamp.seconds)
        // now ≥ 0 and 0 ≤ age ≤ Int64.max: the difference cannot overflow.
        return age.overflow ? now : now - max(0, age.partialValue)
    }

    /// When (since boot) the process that started `ticks` clock ticks after boot (the 22nd
    /// field of /proc/PID/stat) started.
    public static func sinceBoot(ofStartTicks ticks: UInt64) -> Int64 {
        let perSecond = max(1, sysconf(Int32(_SC_CLK_TCK)))
        return Int64(clamping: ticks / UInt64(perSecond))
    }
}
