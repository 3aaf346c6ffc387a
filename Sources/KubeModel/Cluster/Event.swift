/// Something that happened to an object (`v1.Event`, the core group's events).
public struct Event: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "Event"

    public var apiVersion: String? = Event.apiVersion
    public var kind: String? = Event.kind
    public var metadata = ObjectMeta()
    public var involvedObject = ObjectReference()
    public var reason: String?
    public var message: String?
    public var source: EventSource?
    public var firstTimestamp: Timestamp?
    public var lastTimestamp: Timestamp?
    public var count: Int32?
    /// `Normal` or `Warning`.
    public var type: String?
    public var eventTime: MicroTimestamp?
    public var series: EventSeries?
    public var action: String?
    public var related: ObjectReference?
    public var reportingComponent: String?
    public var reportingInstance: String?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), involvedObject: ObjectReference, reason: String, message: String, type: String = "Normal") {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
    }
}

/// The component that reported an event.
public struct EventSource: Codable, Sendable, Hashable {
    public var component: String?
    public var host: String?
    public var unknownFields = UnknownFields()

    public init(component: String? = nil, host: String? = nil) {
        self.component = component
        self.host = host
    }
}

/// Repetitions of an event.
public struct EventSeries: Codable, Sendable, Hashable {
    public var count: Int32?
    public var lastObservedTime: MicroTimestamp?
    public var unknownFields = UnknownFields()

    public init(count: Int32? = nil, lastObservedTime: MicroTimestamp? = nil) {
        self.count = count
        self.lastObservedTime = lastObservedTime
    }
}
