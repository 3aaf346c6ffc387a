import FoundationEssentials
import KubeModel
import Synchronization

/// The server's persistent store: API objects as JSON in SQLite, a global monotonically
/// increasing revision (the objects' resourceVersion), optimistic concurrency, and the change
/// feed that watches read.
///
/// All access goes through one lock: SQLite serialises writers anyway, and holding the lock
/// across commit + publish keeps the watch feed in exactly revision order.
public final class ObjectStore: Sendable {
    private struct State {
        let database: SQLiteDatabase
        var revision: Int64
        /// Revisions up to this one may be handed out by changes kept in memory: it is on disk,
        /// so after a crash the store starts above every revision a client has seen.
        var reservedRevision: Int64
        /// Whether this store keeps changes in memory (the server); others stay above its reservations.
        let defers: Bool
        /// Reconstructible changes not written yet, by ``key(_:_:_:)``.
        var pending: [String: PendingChange] = [:]
        var feed: ChangeFeed
        let selectOne: SQLiteStatement
        let insert: SQLiteStatement
        let update: SQLiteStatement
        let remove: SQLiteStatement
        let setRevision: SQLiteStatement
        let readRevision: SQLiteStatement
        let setReservedRevision: SQLiteStatement
        let readReservedRevision: SQLiteStatement
        let raiseRevision: SQLiteStatement
        let selectRevision: SQLiteStatement
        let flushOne: SQLiteStatement
    }

    /// An update kept in memory until the next flush.
    private struct PendingChange {
        var resource: String
        var namespace: String
        var name: String
        var revision: Int64
        var object: JSONValue
        /// The revision of the row when the first of these changes came: a flush writes only
        /// over that row (another process may have written or deleted it since).
        var baseRevision: Int64
    }

    private let state: Mutex<State>
    /// Whether reconstructible updates (``ReconstructibleChange``) wait in memory for ``flush()``.
    public let defersReconstructibleChanges: Bool
    /// Revisions reserved on disk at a time for changes kept in memory (one small write per block).
    let reservationBlock: Int64

    /// The largest object the store keeps (etcd's default request limit, 1.5 MiB): a patch that
    /// grows an object past it is refused with 413 and the stored object stays as it was.
    public static let maximumObjectBytes = 3 << 19

    /// Opens or creates the store at `path`; watches can resume from the last `feedCapacity`
    /// changes as long as they hold no more than `feedByteLimit` bytes of objects.
    /// With `defersReconstructibleChanges`, Lease renewals and Node heartbeats are served from
    /// memory and written by ``flush()`` (the server calls it every few minutes and at shutdown);
    /// a crash loses only those, never a revision: the store reopens above every one handed out.
    public init(path: String, feedCapacity: Int = 10_000, feedByteLimit: Int = 64 << 20,
                defersReconstructibleChanges: Bool = false, reservationBlock: Int64 = 100_000) throws(StorageError) {
        self.defersReconstructibleChanges = defersReconstructibleChanges
        self.reservationBlock = max(1, reservationBlock)
        let database = try SQLiteDatabase(path: path)
        try database.execute("""
            CREATE TABLE IF NOT EXISTS objects (
                resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                revision INTEGER NOT NULL, body BLOB NOT NULL,
                PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
            INSERT OR IGNORE INTO settings (key, value) VALUES ('revision', 1);
            """)
        let read = try database.prepare("SELECT value FROM settings WHERE key = 'revision'")
        read.bind([])
        let committed = try read.step() ? read.integer(0) : 1
        let readReserved = try database.prepare("SELECT value FROM settings WHERE key = 'reservedRevision'")
        readReserved.bind([])
        let reserved = try readReserved.step() ? readReserved.integer(0) : 0
        // Above every revision handed out before the last stop. When changes kept in memory may
        // have been lost, one more: a watcher that saw them gets 410 Gone and lists again.
        let revision = reserved >= committed ? reserved + 1 : committed
        state = Mutex(State(
            database: database, revision: revision, reservedRevision: reserved, defers: defersReconstructibleChanges,
            feed: ChangeFeed(capacity: feedCapacity, byteLimit: feedByteLimit, startRevision: revision),
            selectOne: try database.prepare("SELECT revision, body FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
            insert: try database.prepare("INSERT INTO objects (resource, namespace, name, revision, body) VALUES (?, ?, ?, ?, ?)"),
            update: try database.prepare("UPDATE objects SET revision = ?, body = ? WHERE resource = ? AND namespace = ? AND name = ?"),
            remove: try database.prepare("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
            setRevision: try database.prepare("UPDATE settings SET value = ? WHERE key = 'revision'"),
            readRevision: try database.prepare("SELECT value FROM settings WHERE key = 'revision'"),
            setReservedRevision: try database.prepare(
                "INSERT INTO settings (key, value) VALUES ('reservedRevision', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)"),
            readReservedRevision: try database.prepare("SELECT value FROM settings WHERE key = 'reservedRevision'"),
            raiseRevision: try database.prepare("UPDATE settings SET value = MAX(value, ?) WHERE key = 'revision'"),
            selectRevision: try database.prepare("SELECT revision FROM objects WHERE resource = ? AND namespace = ? AND name = ?"),
            flushOne: try database.prepare(
                "UPDATE objects SET revision = ?, body = ? WHERE resource = ? AND namespace = ? AND name = ? AND revision = ?")))
    }

    /// Writes the changes kept in memory, in one transaction; returns how many.
    @discardableResult
    public func flush() throws -> Int {
        try state.withLock { state in
            guard !state.pending.isEmpty else { return 0 }
            let pending = state.pending
            let revision = state.revision
            try state.database.transaction {
                for change in pending.values {
                    let body = KubeJSON.serialize(change.object)
                    // A row another process changed or deleted since is left as it is.
                    try state.flushOne.run([.integer(change.revision), .blob(body), .text(change.resource), .text(change.namespace), .text(change.name),
                                            .integer(change.baseRevision)])
                }
                // The rows' revisions are then at most the recorded one (for a reader that knows
                // nothing of reservations).
                try state.raiseRevision.run([.integer(revision)])
            }
            state.pending = [:]
            return pending.count
        }
    }

    /// How many changes wait in memory.
    public var pendingChanges: Int { state.withLock { $0.pending.count } }

    private static func key(_ resource: String, _ namespace: String, _ name: String) -> String {
        "\(resource)\u{0}\(namespace)\u{0}\(name)"
    }

    /// The newest committed revision.
    public var currentRevision: Int64 { state.withLock { $0.revision } }

    /// One object, or nil.
    public func get(_ resource: ResourceType, namespace: String, name: String) throws -> JSONValue? {
        try state.withLock { state in try Self.read(&state, resource, namespace, name) }
    }

    /// All objects of a resource (in one namespace, or all when nil) ordered by namespace and
    /// name, starting after `after` (a `namespace/name` key), with the revision they were read at.
    public func list(_ resource: ResourceType, namespace: String?, after: String? = nil) throws -> (items: [JSONValue], revision: Int64) {
        try state.withLock { state in
            var sql = "SELECT namespace, name, body, revision FROM objects WHERE resource = ?"
            var values: [SQLiteStatement.Value] = [.text(resource.storageKey)]
            if let namespace {
                sql += " AND namespace = ?"
                values.append(.text(namespace))
            }
            if let after {
                sql += " AND (namespace || '/' || name) > ?"
                values.append(.text(after))
            }
            sql += " ORDER BY namespace, name"
            let statement = try state.database.prepare(sql)
            statement.bind(values)
            var items: [JSONValue] = []
            while try statement.step() {
                if !state.pending.isEmpty, let pending = state.pending[Self.key(resource.storageKey, statement.text(0), statement.text(1))],
                   pending.baseRevision == statement.integer(3) {
                    items.append(pending.object)
                } else {
                    items.append(try Self.decode(statement.blob(2)))
                }
            }
            return (items, max(state.revision, try Self.storedRevision(&state)))
        }
    }

    /// Stores a new object. Sets uid, creationTimestamp, generation and resourceVersion.
    public func create(_ resource: ResourceType, namespace: String, name: String, object: JSONValue) throws -> JSONValue {
        try state.withLock { state in
            if try Self.read(&state, resource, namespace, name) != nil { throw APIError.alreadyExists(resource, name) }
            var stored = object
            // A uid the server chose beforehand (a job's selector names it) is kept.
            if stored.string(at: ["metadata", "uid"])?.isEmpty != false { stored.set(["metadata", "uid"], .string(UUID().uuidString.lowercased())) }
            stored.set(["metadata", "creationTimestamp"], .string(Timestamp.now().description))
            stored.set(["metadata", "generation"], .integer(1))
            return try Self.commit(&state, resource, namespace, name, stored, type: .added, previous: nil)
        }
    }

    /// Replaces an object with what `change` makes of the current one, atomically.
    ///
    /// `change` receives the stored object and returns the new one (or nil to leave it as it
    /// is); a non-nil `expectedRevision` that is not the stored one is a 409 Conflict.
    /// Returns the object as stored.
    @discardableResult
    public func update(
        _ resource: ResourceType, namespace: String, name: String, expectedRevision: String? = nil,
        change: (JSONValue) throws -> JSONValue?
    ) throws -> JSONValue {
        try state.withLock { state in
            guard let current = try Self.read(&state, resource, namespace, name) else { throw APIError.notFound(resource, name) }
            if let expectedRevision, !expectedRevision.isEmpty, expectedRevision != current.string(at: ["metadata", "resourceVersion"]) {
                throw APIError.conflict(resource, name, "the object has been modified; please apply your changes to the latest version and try again")
            }
            guard var updated = try change(current) else { return current }
            // Identity and bookkeeping fields are the server's, not the client's.
            for key in ["uid", "creationTimestamp", "namespace", "name"] {
                updated.set(["metadata", key], current[path: ["metadata", key]])
            }
            updated.set(["metadata", "resourceVersion"], current[path: ["metadata", "resourceVersion"]])
            if updated == current { return current }
            if defersReconstructibleChanges && ReconstructibleChange.isReconstructible(resource, namespace: namespace, from: current, to: updated) {
                return try Self.commitInMemory(&state, resource, namespace, name, updated, previous: current, block: reservationBlock)
            }
            return try Self.commit(&state, resource, namespace, name, updated, type: .modified, previous: current)
        }
    }

    /// Removes an object; returns it as it was last stored.
    @discardableResult
    public func delete(_ resource: ResourceType, namespace: String, name: String, expectedUID: String? = nil) throws -> JSONValue {
        try state.withLock { state in
            guard let current = try Self.read(&state, resource, namespace, name) else { throw APIError.notFound(resource, name) }
            if let expectedUID, expectedUID != current.string(at: ["metadata", "uid"]) {
                throw APIError.conflict(resource, name, "Precondition failed: UID in precondition: \(expectedUID), UID in object meta: \(current.string(at: ["metadata", "uid"]) ?? "")")
            }
            var revision: Int64 = 0
            var snapshot = current
            let bytes = KubeJSON.serialize(current).count
            try state.database.transaction {
                revision = try Self.nextRevision(&state)
                snapshot.set(["metadata", "resourceVersion"], .string(String(revision)))
                try state.remove.run([.text(resource.storageKey), .text(namespace), .text(name)])
                try state.setRevision.run([.integer(revision)])
            }
            state.revision = revision
            state.pending[Self.key(resource.storageKey, namespace, name)] = nil
            state.feed.publish(Change(revision: revision, resource: resource.storageKey, namespace: namespace, type: .deleted, object: snapshot, previous: current), bytes: 2 * bytes)
            return snapshot
        }
    }

    /// Subscribes to changes of a resource after `revision`; replays buffered changes first.
    /// Throws 410 Gone when changes after `revision` are no longer buffered.
    public func watch(_ resource: ResourceType, namespace: String?, after revision: Int64) throws -> WatchSubscription {
        try state.withLock { state in
            try state.feed.subscribe(resource: resource.storageKey, namespace: namespace, after: revision)
        }
    }

    /// Ends a subscription early (the client went away).
    public func cancel(_ subscription: WatchSubscription) {
        state.withLock { $0.feed.unsubscribe(subscription.id) }
    }

    // MARK: - Under the lock

    private static func read(_ state: inout State, _ resource: ResourceType, _ namespace: String, _ name: String) throws -> JSONValue? {
        let pendingKey = key(resource.storageKey, namespace, name)
        if !state.pending.isEmpty, let pending = state.pending[pendingKey] {
            state.selectRevision.bind([.text(resource.storageKey), .text(namespace), .text(name)])
            defer { state.selectRevision.reset() }
            if try state.selectRevision.step(), state.selectRevision.integer(0) == pending.baseRevision { return pending.object }
            // Another process wrote or deleted the row: what it wrote wins.
            state.pending[pendingKey] = nil
        }
        state.selectOne.bind([.text(resource.storageKey), .text(namespace), .text(name)])
        defer { state.selectOne.reset() }
        guard try state.selectOne.step() else { return nil }
        return try decode(state.selectOne.blob(1))
    }

    private static func commit(
        _ state: inout State, _ resource: ResourceType, _ namespace: String, _ name: String, _ object: JSONValue,
        type: WatchEventType, previous: JSONValue?
    ) throws -> JSONValue {
        var revision: Int64 = 0
        var stored = object
        var bytes = 0
        try state.database.transaction {
            revision = try Self.nextRevision(&state)
            stored.set(["metadata", "resourceVersion"], .string(String(revision)))
            let body = KubeJSON.serialize(stored)
            bytes = body.count
            guard bytes <= Self.maximumObjectBytes else {
                throw APIError(code: 413, reason: "RequestEntityTooLarge",
                               message: "\(resource.qualifiedName) \"\(name)\" would be \(bytes) bytes, more than the \(Self.maximumObjectBytes) an object may have")
            }
            if previous == nil {
                try state.insert.run([.text(resource.storageKey), .text(namespace), .text(name), .integer(revision), .blob(body)])
            } else {
                try state.update.run([.integer(revision), .blob(body), .text(resource.storageKey), .text(namespace), .text(name)])
            }
            try state.setRevision.run([.integer(revision)])
        }
        state.revision = revision
        state.pending[key(resource.storageKey, namespace, name)] = nil
        state.feed.publish(Change(revision: revision, resource: resource.storageKey, namespace: namespace, type: type, object: stored, previous: previous),
                           bytes: previous == nil ? bytes : 2 * bytes)
        return stored
    }

    /// A reconstructible update: a revision like any other (watchers see it at once), the
    /// object kept in memory until ``flush()``. When the revision passes the reservation on
    /// disk, a new block is reserved first.
    private static func commitInMemory(
        _ state: inout State, _ resource: ResourceType, _ namespace: String, _ name: String, _ object: JSONValue, previous: JSONValue, block: Int64
    ) throws -> JSONValue {
        var revision = try nextRevision(&state)
        if revision > state.reservedRevision {
            var reserved: Int64 = 0
            try state.database.transaction {
                revision = try nextRevision(&state)
                reserved = revision + block
                try state.setReservedRevision.run([.integer(reserved)])
            }
            state.reservedRevision = reserved
        }
        var stored = object
        stored.set(["metadata", "resourceVersion"], .string(String(revision)))
        let bytes = KubeJSON.serialize(stored).count
        guard bytes <= maximumObjectBytes else {
            throw APIError(code: 413, reason: "RequestEntityTooLarge",
                           message: "\(resource.qualifiedName) \"\(name)\" would be \(bytes) bytes, more than the \(maximumObjectBytes) an object may have")
        }
        state.revision = revision
        let pendingKey = key(resource.storageKey, namespace, name)
        let base = state.pending[pendingKey]?.baseRevision ?? Int64(previous.string(at: ["metadata", "resourceVersion"]) ?? "") ?? 0
        state.pending[pendingKey] = PendingChange(
            resource: resource.storageKey, namespace: namespace, name: name, revision: revision, object: stored, baseRevision: base)
        state.feed.publish(Change(revision: revision, resource: resource.storageKey, namespace: namespace, type: .modified, object: stored, previous: previous),
                           bytes: 2 * bytes)
        return stored
    }

    /// The next revision, read inside the write transaction so that another process writing the
    /// same store (`iotkube-server token create` beside a running server) never reuses one.
    private static func nextRevision(_ state: inout State) throws -> Int64 {
        var floor = max(try storedRevision(&state), state.revision)
        // Another process (`token create` beside a running server) stays above the revisions
        // the server may have handed out from memory.
        if !state.defers {
            state.readReservedRevision.bind([])
            defer { state.readReservedRevision.reset() }
            if try state.readReservedRevision.step() { floor = max(floor, state.readReservedRevision.integer(0)) }
        }
        return floor + 1
    }

    private static func storedRevision(_ state: inout State) throws -> Int64 {
        state.readRevision.bind([])
        defer { state.readRevision.reset() }
        return try state.readRevision.step() ? state.readRevision.integer(0) : 0
    }

    private static func decode(_ bytes: [UInt8]) throws -> JSONValue {
        do {
            return try KubeJSON.parse(bytes)
        } catch {
            throw APIError.internalError("stored object is unreadable: \(error)")
        }
    }
}
