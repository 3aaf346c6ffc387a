import CSQLite

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why a storage operation failed.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var code: Int32
    public var message: String
    public var description: String { "storage: \(operation) failed (\(code)): \(message)" }
}

/// A SQLite connection: prepared statements and transactions over the C API.
///
/// Not thread-safe by itself; ``ObjectStore`` serialises every use behind its lock.
final class SQLiteDatabase {
    private let handle: OpaquePointer

    /// Opens (creating if needed) the database at `path` in WAL mode.
    ///
    /// The file holds every Secret and bootstrap token, so it is created (or tightened to)
    /// mode 0600 before SQLite opens it, whatever the umask and whoever made the directory;
    /// SQLite gives its `-wal` and `-shm` files the database file's mode.
    ///
    /// `synchronous=FULL`: a commit is on disk before the API answers, as etcd fsyncs before it
    /// acknowledges a write, so an acknowledged object survives a power cut. In WAL mode
    /// NORMAL would only sync at checkpoints and could lose the last acknowledged writes.
    init(path: String) throws(StorageError) {
        try Self.restrictPermissions(path)
        var connection: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &connection, flags, nil)
        guard status == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close(connection)
            throw StorageError(operation: "open \(path)", code: status, message: message)
        }
        handle = connection
        sqlite3_busy_timeout(handle, 5000)
        // WAL keeps the store consistent when the process is killed mid-write; FULL makes each
        // commit durable across power loss (see above).
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=FULL")
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Creates `path` (and tightens it and any existing `-wal`/`-shm`) to owner-only 0600.
    private static func restrictPermissions(_ path: String) throws(StorageError) {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw StorageError(operation: "create \(path)", code: errno, message: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        guard fchmod(descriptor, 0o600) == 0 else {
            throw StorageError(operation: "chmod \(path)", code: errno, message: String(cString: strerror(errno)))
        }
        for suffix in ["-wal", "-shm"] {
            let companion = open(path + suffix, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
            if companion >= 0 {
                _ = fchmod(companion, 0o600)
                close(companion)
            }
        }
    }

    func execute(_ sql: String) throws(StorageError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        guard status == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? lastMessage
            sqlite3_free(errorMessage)
            throw StorageError(operation: sql, code: status, message: message)
        }
    }

    func prepare(_ sql: String) throws(StorageError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard status == SQLITE_OK, let statement else {
            throw StorageError(operation: "prepare \(sql)", code: status, message: lastMessage)
        }
        return SQLiteStatement(statement: statement, database: self)
    }

    /// Runs `body` in a write transaction: committed when it returns, rolled back when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    var lastMessage: String { String(cString: sqlite3_errmsg(handle)) }
}

/// A prepared statement; reset and re-bound for each use.
final class SQLiteStatement {
    private let statement: OpaquePointer
    private unowned let database: SQLiteDatabase

    init(statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit { sqlite3_finalize(statement) }

    /// A value to bind.
    enum Value {
        case integer(Int64)
        case text(String)
        case blob([UInt8])
        case null
    }

    /// Resets the statement and binds `values` to its parameters in order.
    func bind(_ values: [Value]) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .integer(let number): sqlite3_bind_int64(statement, index, number)
            case .text(let text):
                let utf8 = Array(text.utf8)
                utf8.withUnsafeBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(buffer.count, 1)) {
                        iotkube_sqlite_bind_text_copy(statement, index, $0, Int32(buffer.count))
                    }
                }
                if utf8.isEmpty { iotkube_sqlite_bind_text_copy(statement, index, "", 0) }
            case .blob(let bytes):
                bytes.withUnsafeBytes { iotkube_sqlite_bind_blob_copy(statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, Int32($0.count)) }
            case .null: sqlite3_bind_null(statement, index)
            }
        }
    }

    /// Advances to the next row; false when done.
    func step() throws(StorageError) -> Bool {
        let status = sqlite3_step(statement)
        switch status {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw StorageError(operation: "step", code: status, message: database.lastMessage)
        }
    }

    /// Ends the current use so the statement holds no read snapshot.
    func reset() { sqlite3_reset(statement) }

    /// Runs a statement that returns no rows.
    func run(_ values: [Value]) throws(StorageError) {
        bind(values)
        _ = try step()
        reset()
    }

    func integer(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        return String(cString: pointer)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
