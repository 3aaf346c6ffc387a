extension AgentConfiguration {
    /// The eviction manager's settings from the `eviction*` fields (the kubelet's defaults where absent).
    public func evictionSettings() throws(EvictionSettingsError) -> EvictionSettings {
        var settings = try EvictionSettings.parse(
            hard: evictionHard, soft: evictionSoft, softGracePeriod: evictionSoftGracePeriod, minimumReclaim: evictionMinimumReclaim,
            transitionPeriod: evictionPressureTransitionPeriod, maximumPodGracePeriod: evictionMaxPodGracePeriod)
        if let percent = memoryPressureStallPercent {
            guard percent > 0, percent < 100 else {
                throw EvictionSettingsError("memoryPressureStallPercent (\(percent)) must be above 0 and below 100")
            }
            let text = memoryPressureStallGracePeriod ?? "30s"
            guard let grace = EvictionSettings.parseDuration(text), grace >= .zero, grace <= .seconds(86400) else {
                throw EvictionSettingsError("memoryPressureStallGracePeriod: \"\(text)\" is not a duration from 0 to 24h (like 30s, 2m)")
            }
            // "Not stalled" below 100 − percent, held for the grace period: a soft threshold.
            settings.thresholds.append(EvictionThreshold(signal: .memoryPressure, value: .percentage((100 - percent) / 100), gracePeriod: grace))
        } else if memoryPressureStallGracePeriod != nil {
            throw EvictionSettingsError("memoryPressureStallGracePeriod needs memoryPressureStallPercent")
        }
        return settings
    }
}
