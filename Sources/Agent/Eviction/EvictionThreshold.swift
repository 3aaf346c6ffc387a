import KubeModel

/// One eviction threshold: a signal falling below a quantity or a percentage of its capacity.
/// Hard thresholds act at once; soft ones only after holding for their grace period. Once met,
/// a threshold stays met until the signal is back above it by the minimum reclaim.
public struct EvictionThreshold: Sendable, Hashable, CustomStringConvertible {
    public enum Value: Sendable, Hashable, CustomStringConvertible {
        case quantity(Int64)
        /// A fraction of the capacity, 0...1.
        case percentage(Double)

        public var description: String {
            switch self {
            case .quantity(let count): "\(count)"
            case .percentage(let fraction): "\(Self.percent(fraction))%"
            }
        }

        static func percent(_ fraction: Double) -> String {
            let value = fraction * 100
            return value == value.rounded() ? "\(Int(value))" : "\(value)"
        }

        /// The absolute amount for a signal of this capacity.
        func amount(capacity: Int64) -> Int64 {
            switch self {
            case .quantity(let count): count
            case .percentage(let fraction): Int64(Double(capacity) * fraction)
            }
        }
    }

    public var signal: EvictionSignal
    public var value: Value
    /// nil for a hard threshold.
    public var gracePeriod: Duration?
    public var minimumReclaim: Value?

    public init(signal: EvictionSignal, value: Value, gracePeriod: Duration? = nil, minimumReclaim: Value? = nil) {
        self.signal = signal
        self.value = value
        self.gracePeriod = gracePeriod
        self.minimumReclaim = minimumReclaim
    }

    public var isHard: Bool { gracePeriod == nil }

    /// The signal's value below which the threshold is met.
    public func limit(capacity: Int64) -> Int64 { value.amount(capacity: capacity) }

    /// What the signal must be back above before a met threshold is released.
    public func releaseLevel(capacity: Int64) -> Int64 {
        limit(capacity: capacity) + (minimumReclaim?.amount(capacity: capacity) ?? 0)
    }

    /// The threshold as a kubelet message shows it ("100Mi", "10%").
    public func displayed(capacity: Int64) -> String {
        switch value {
        case .percentage: return value.description
        case .quantity(let count): return signal.isBytes ? Quantity.bytes(count).description : "\(count)"
        }
    }

    public var description: String { "\(signal.rawValue)<\(value)" + (gracePeriod.map { " for \($0)" } ?? "") }

    /// The kubelet's default hard thresholds.
    public static let defaults: [EvictionThreshold] = [
        EvictionThreshold(signal: .memoryAvailable, value: .quantity(100 << 20)),
        EvictionThreshold(signal: .nodefsAvailable, value: .percentage(0.10)),
        EvictionThreshold(signal: .nodefsInodesFree, value: .percentage(0.05)),
        EvictionThreshold(signal: .imagefsAvailable, value: .percentage(0.15)),
        EvictionThreshold(signal: .imagefsInodesFree, value: .percentage(0.05)),
    ]

    /// A threshold value from its text: a quantity ("100Mi", "1000") or a percentage ("10%").
    /// `field` names where it came from for the error.
    static func parseValue(_ text: String, field: String) throws(EvictionSettingsError) -> Value {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasSuffix("%") {
            guard let percent = Double(trimmed.dropLast()), percent >= 0, percent <= 100 else {
                throw EvictionSettingsError("\(field): \"\(text)\" is not a percentage between 0% and 100%")
            }
            return .percentage(percent / 100)
        }
        let quantity: Quantity
        do { quantity = try Quantity(parsing: trimmed) } catch {
            throw EvictionSettingsError("\(field): \"\(text)\" is neither a quantity (100Mi) nor a percentage (10%): \(error)")
        }
        guard quantity.sign >= 0 else { throw EvictionSettingsError("\(field): \"\(text)\" is negative") }
        return .quantity(quantity.value)
    }
}

/// A bad eviction setting in the agent configuration; names the field and the value.
public struct EvictionSettingsError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
