/// The eviction manager's settings, read from the agent configuration's kubelet-named fields
/// (`evictionHard`, `evictionSoft`, `evictionSoftGracePeriod`, `evictionMinimumReclaim`,
/// `evictionPressureTransitionPeriod`, `evictionMaxPodGracePeriod`).
public struct EvictionSettings: Sendable, Equatable {
    public var thresholds: [EvictionThreshold]
    /// How long a pressure condition stays after its threshold was last met (against flapping).
    public var pressureTransitionPeriod: Duration
    /// The longest grace period a soft eviction gives a pod (nil: the pod's own).
    public var maximumPodGracePeriod: Int64?

    public init(thresholds: [EvictionThreshold] = EvictionThreshold.defaults, pressureTransitionPeriod: Duration = .seconds(300),
                maximumPodGracePeriod: Int64? = nil) {
        self.thresholds = thresholds
        self.pressureTransitionPeriod = pressureTransitionPeriod
        self.maximumPodGracePeriod = maximumPodGracePeriod
    }

    /// Like the kubelet, a configured `evictionHard` replaces the defaults as a whole (an empty
    /// map turns hard eviction off). Every soft threshold needs a grace period.
    public static func parse(
        hard: [String: String]?, soft: [String: String]?, softGracePeriod: [String: String]?,
        minimumReclaim: [String: String]?, transitionPeriod: String?, maximumPodGracePeriod: Int64?
    ) throws(EvictionSettingsError) -> EvictionSettings {
        func signal(_ name: String, _ field: String) throws(EvictionSettingsError) -> EvictionSignal {
            guard let signal = EvictionSignal(rawValue: name), signal != .memoryPressure else {
                let known = EvictionSignal.allCases.filter { $0 != .memoryPressure }.map(\.rawValue)
                throw EvictionSettingsError("\(field): unknown signal \"\(name)\" (known: \(known.joined(separator: ", ")); memory pressure is memoryPressureStallPercent)")
            }
            return signal
        }
        var reclaims: [EvictionSignal: EvictionThreshold.Value] = [:]
        for (name, text) in minimumReclaim ?? [:] {
            reclaims[try signal(name, "evictionMinimumReclaim")] = try EvictionThreshold.parseValue(text, field: "evictionMinimumReclaim.\(name)")
        }
        var thresholds: [EvictionThreshold] = []
        if let hard {
            for (name, text) in hard.sorted(by: { $0.key < $1.key }) {
                let signal = try signal(name, "evictionHard")
                thresholds.append(EvictionThreshold(signal: signal, value: try EvictionThreshold.parseValue(text, field: "evictionHard.\(name)"),
                                                    minimumReclaim: reclaims[signal]))
            }
        } else {
            thresholds = EvictionThreshold.defaults.map { threshold in
                var threshold = threshold
                threshold.minimumReclaim = reclaims[threshold.signal]
                return threshold
            }
        }
        var graces: [EvictionSignal: Duration] = [:]
        for (name, text) in softGracePeriod ?? [:] {
            let signal = try signal(name, "evictionSoftGracePeriod")
            guard let duration = parseDuration(text), duration >= .zero else {
                throw EvictionSettingsError("evictionSoftGracePeriod.\(name): \"\(text)\" is not a duration (like 90s, 1m30s, 2h)")
            }
            graces[signal] = duration
        }
        for (name, text) in (soft ?? [:]).sorted(by: { $0.key < $1.key }) {
            let signal = try signal(name, "evictionSoft")
            guard let grace = graces[signal] else {
                throw EvictionSettingsError("evictionSoft.\(name) needs a grace period in evictionSoftGracePeriod.\(name)")
            }
            thresholds.append(EvictionThreshold(signal: signal, value: try EvictionThreshold.parseValue(text, field: "evictionSoft.\(name)"),
                                                gracePeriod: grace, minimumReclaim: reclaims[signal]))
        }
        for signal in graces.keys where soft?[signal.rawValue] == nil {
            throw EvictionSettingsError("evictionSoftGracePeriod.\(signal.rawValue) has no threshold in evictionSoft")
        }
        var transition = Duration.seconds(300)
        if let transitionPeriod {
            guard let parsed = parseDuration(transitionPeriod), parsed >= .zero else {
                throw EvictionSettingsError("evictionPressureTransitionPeriod: \"\(transitionPeriod)\" is not a duration (like 30s, 5m)")
            }
            transition = parsed
        }
        if let maximumPodGracePeriod, maximumPodGracePeriod < 0 {
            throw EvictionSettingsError("evictionMaxPodGracePeriod: \(maximumPodGracePeriod) is negative")
        }
        return EvictionSettings(thresholds: thresholds, pressureTransitionPeriod: transition, maximumPodGracePeriod: maximumPodGracePeriod)
    }

    /// A Go-style duration: a sequence of numbers with units h, m, s, ms ("1m30s", "500ms", "2h").
    public static func parseDuration(_ text: String) -> Duration? {
        var rest = Substring(text.trimmingWhitespace())
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return .zero }
        var total = Duration.zero
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            let seconds: Double
            switch unit {
            case "h": seconds = 3600
            case "m": seconds = 60
            case "s": seconds = 1
            case "ms": seconds = 0.001
            default: return nil
            }
            // Bounded before the conversion, which traps past Int64 (Go's ParseDuration errs there too).
            let milliseconds = (value * seconds * 1000).rounded()
            guard milliseconds.isFinite, milliseconds < 1e15 else { return nil }
            total += .milliseconds(Int64(milliseconds))
        }
        return total
    }
}
