/// Durations in seconds from a pod (grace periods, probe delays and timeouts) bounded before
/// the agent adds them to a clock: the API allows any int64 there, and `now + Int64.max` would
/// stop the agent (and a checkpointed pod would stop it again at every start). 2³² s (136
/// years) is forever for a board.
enum SpecSeconds {
    static let maximum: Int64 = 1 << 32

    /// `seconds` within 0...maximum.
    static func bounded(_ seconds: Int64) -> Int64 { min(max(0, seconds), maximum) }
}
