/// The members of a JSON object that this version of the model does not know.
///
/// Every API struct carries one as its last stored property. ``KubeJSON`` and ``KubeYAML`` fill
/// it on decode and write its members back, in place, on encode, so an object read from a newer
/// API server and written back keeps the fields this agent has never heard of.
/// (Other coders do not know this contract: use ``KubeJSON`` for API objects.)
public struct UnknownFields: Sendable, Hashable, Codable {
    /// The unknown members in their original order.
    public var members: JSONObject

    public init(_ members: JSONObject = JSONObject()) { self.members = members }

    public var isEmpty: Bool { members.isEmpty }

    public init(from decoder: any Decoder) throws {
        // Reached only through a foreign decoder that found a literal "unknownFields" key.
        members = JSONObject()
    }

    public func encode(to encoder: any Encoder) throws {
        // Reached only through a foreign encoder; an empty object keeps its output valid.
        _ = encoder.container(keyedBy: AnyCodingKey.self)
    }
}

/// A type the API treats as optional that the model holds as a plain value for convenience
/// (`metadata`): an absent or null member decodes as the empty value instead of an error.
public protocol EmptyWhenAbsent {
    /// The value an absent member decodes as.
    static var emptyValue: Self { get }
}
