import KubeCoding
import SystemSupport

/// The container record (state.json) of each container: written atomically, read through the
/// cache of decoded versions.
extension BuiltinRuntime {
    func save(_ record: ContainerRecord) throws(RuntimeError) {
        do { try AtomicFile.write(try KubeJSON.encode(record), to: "\(directory(record.id))/state.json", mode: 0o600) } catch {
            throw RuntimeError("container \(record.id): writing state: \(error)")
        }
    }

    public func record(id: String) throws(RuntimeError) -> ContainerRecord {
        try Self.validate(id: id)
        let path = "\(directory(id))/state.json"
        var corruption: (any Error)?
        let record = try? records.record(at: path) { bytes in
            do { return try KubeJSON.decode(ContainerRecord.self, from: bytes, validation: .discard) } catch {
                corruption = error
                throw error
            }
        }
        if let corruption { throw RuntimeError("container \(id): corrupt state \(path): \(corruption)") }
        guard let record else { throw RuntimeError("container \(id) does not exist") }
        return record
    }
}
