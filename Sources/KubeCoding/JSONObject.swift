/// A JSON object that keeps its members in insertion order.
///
/// Small objects (most API objects, level by level) are scanned linearly. Past
/// ``indexThreshold`` members a key-to-slot index makes lookup, insertion and removal O(1), so
/// client-sized objects (a node with 100,000 annotations) compare and merge in linear time.
/// Removal leaves a hole that is compacted away once holes outnumber members, keeping order.
/// Equality ignores member order, as JSON object equality does.
public struct JSONObject: Sendable, Sequence, Hashable {
    /// One member of an object.
    public struct Member: Sendable, Hashable {
        public var key: String
        public var value: JSONValue
    }

    /// Member count above which lookups go through ``positions``.
    static let indexThreshold = 8

    /// Members in order; nil marks a removed member (only while indexed).
    private var slots: [Member?] = []
    /// Slot of each key; filled only while indexed.
    private var positions: [String: Int] = [:]
    private var isIndexed = false

    public init() {}

    /// The number of members.
    public private(set) var count = 0
    public var isEmpty: Bool { count == 0 }
    /// The member names in order.
    public var keys: [String] { map(\.key) }
    /// The members in order.
    var members: [Member] { slots.compactMap { $0 } }

    /// The value of `key`; setting nil removes the member, setting an existing key replaces it in place.
    public subscript(key: String) -> JSONValue? {
        get { slot(of: key).flatMap { slots[$0]?.value } }
        set {
            switch (slot(of: key), newValue) {
            case (let slot?, let value?): slots[slot]?.value = value
            case (let slot?, nil): remove(at: slot, key: key)
            case (nil, let value?): append(Member(key: key, value: value))
            case (nil, nil): break
            }
        }
    }

    /// Appends a member the caller knows to be new (the parsers check duplicates themselves);
    /// an existing key is still replaced in place, so the object stays consistent.
    public mutating func appendUnchecked(_ key: String, _ value: JSONValue) {
        self[key] = value
    }

    private func slot(of key: String) -> Int? {
        isIndexed ? positions[key] : slots.firstIndex { $0?.key == key }
    }

    private mutating func append(_ member: Member) {
        slots.append(member)
        count += 1
        if isIndexed {
            positions[member.key] = slots.count - 1
        } else if count > Self.indexThreshold {
            rebuildIndex()
        }
    }

    private mutating func remove(at slot: Int, key: String) {
        count -= 1
        guard isIndexed else { slots.remove(at: slot); return }
        slots[slot] = nil
        positions[key] = nil
        if slots.count - count > Swift.max(count, Self.indexThreshold) { compact() }
    }

    /// Drops the holes left by removals and reindexes (or stops indexing a small object).
    private mutating func compact() {
        slots = slots.filter { $0 != nil }
        if count > Self.indexThreshold {
            rebuildIndex()
        } else {
            positions = [:]
            isIndexed = false
        }
    }

    private mutating func rebuildIndex() {
        positions = Dictionary(minimumCapacity: count)
        for (slot, member) in slots.enumerated() {
            if let member { positions[member.key] = slot }
        }
        isIndexed = true
    }

    /// Iterates the members in order.
    public struct Iterator: IteratorProtocol {
        var base: IndexingIterator<[Member?]>
        public mutating func next() -> Member? {
            while let slot = base.next() {
                if let member = slot { return member }
            }
            return nil
        }
    }

    public func makeIterator() -> Iterator { Iterator(base: slots.makeIterator()) }
    public var underestimatedCount: Int { count }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for member in lhs where rhs[member.key] != member.value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent: combine per-member hashes commutatively.
        var combined = 0
        for member in self {
            var memberHasher = Hasher()
            memberHasher.combine(member.key)
            memberHasher.combine(member.value)
            combined ^= memberHasher.finalize()
        }
        hasher.combine(count)
        hasher.combine(combined)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// `["key": .string("value")]`, members in the order written.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        for (key, value) in elements { self[key] = value }
    }
}
