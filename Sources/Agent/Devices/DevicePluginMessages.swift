/// The messages of the kubelet's device plugin API (`v1beta1`, package `v1beta1` of
/// k8s.io/kubelet/pkg/apis/deviceplugin), with their field numbers.
enum DevicePluginMessages {
    static let version = "v1beta1"
    static let registrationService = "/v1beta1.Registration/Register"

    /// `RegisterRequest { version = 1; endpoint = 2; resource_name = 3; DevicePluginOptions options = 4 }`.
    struct RegisterRequest: Sendable, Equatable {
        var version = ""
        var endpoint = ""
        var resourceName = ""
        var options = Options()

        init() {}

        init(decoding bytes: [UInt8]) throws(ProtobufReader.Malformed) {
            var reader = ProtobufReader(bytes)
            while let (field, value) = try reader.next() {
                switch field {
                case 1: version = value.string ?? ""
                case 2: endpoint = value.string ?? ""
                case 3: resourceName = value.string ?? ""
                case 4: if let slice = value.slice { options = try Options(decoding: slice) }
                default: break
                }
            }
        }
    }

    /// `DevicePluginOptions { pre_start_required = 1; get_preferred_allocation_available = 2 }`.
    struct Options: Sendable, Equatable, Codable {
        var preStartRequired = false
        var preferredAllocationAvailable = false

        init() {}

        init(decoding bytes: ArraySlice<UInt8>) throws(ProtobufReader.Malformed) {
            var reader = ProtobufReader(bytes)
            while let (field, value) = try reader.next() {
                if field == 1 { preStartRequired = value.bool }
                if field == 2 { preferredAllocationAvailable = value.bool }
            }
        }
    }

    /// `ListAndWatchResponse { repeated Device devices = 1 }`, `Device { ID = 1; health = 2 }`.
    static func devices(decoding bytes: [UInt8]) throws(ProtobufReader.Malformed) -> [(id: String, healthy: Bool)] {
        var result: [(id: String, healthy: Bool)] = []
        var reader = ProtobufReader(bytes)
        while let (field, value) = try reader.next() {
            guard field == 1, let slice = value.slice else { continue }
            var device = ProtobufReader(slice)
            var id = "", health = ""
            while let (deviceField, deviceValue) = try device.next() {
                if deviceField == 1 { id = deviceValue.string ?? "" }
                if deviceField == 2 { health = deviceValue.string ?? "" }
            }
            result.append((id, health == "Healthy"))
        }
        return result
    }

    /// `AllocateRequest { repeated ContainerAllocateRequest container_requests = 1 }` with
    /// `ContainerAllocateRequest { repeated string devices_ids = 1 }` (also the shape of
    /// `PreStartContainerRequest { repeated string devices_ids = 1 }` without the outer level).
    static func allocateRequest(_ containers: [[String]]) -> [UInt8] {
        var writer = ProtobufWriter()
        for ids in containers {
            writer.message(1) { container in for id in ids { container.string(1, id) } }
        }
        return writer.bytes
    }

    static func preStartRequest(_ ids: [String]) -> [UInt8] {
        var writer = ProtobufWriter()
        for id in ids { writer.string(1, id) }
        return writer.bytes
    }

    /// `PreferredAllocationRequest { repeated ContainerPreferredAllocationRequest container_requests = 1 }`
    /// with `{ repeated available_deviceIDs = 1; repeated must_include_deviceIDs = 2; int32 allocation_size = 3 }`.
    static func preferredAllocationRequest(available: [String], size: Int) -> [UInt8] {
        var writer = ProtobufWriter()
        writer.message(1) { container in
            for id in available { container.string(1, id) }
            container.int(3, Int64(size))
        }
        return writer.bytes
    }

    /// `PreferredAllocationResponse { repeated ContainerPreferredAllocationResponse container_responses = 1 }`
    /// with `{ repeated string deviceIDs = 1 }`: the first container's choice.
    static func preferredDevices(decoding bytes: [UInt8]) throws(ProtobufReader.Malformed) -> [String] {
        var reader = ProtobufReader(bytes)
        while let (field, value) = try reader.next() {
            guard field == 1, let slice = value.slice else { continue }
            var container = ProtobufReader(slice)
            var ids: [String] = []
            while let (idField, idValue) = try container.next() {
                if idField == 1 { ids.append(idValue.string ?? "") }
            }
            return ids
        }
        return []
    }

    /// What a plugin's `Allocate` gives one container:
    /// `ContainerAllocateResponse { map envs = 1; repeated Mount mounts = 2; repeated DeviceSpec devices = 3; map annotations = 4 }`.
    struct ContainerAllocation: Sendable, Hashable, Codable {
        struct Mount: Sendable, Hashable, Codable {
            var containerPath = ""
            var hostPath = ""
            var readOnly = false
        }

        struct DeviceSpec: Sendable, Hashable, Codable {
            var containerPath = ""
            var hostPath = ""
            var permissions = ""
        }

        var envs: [String: String] = [:]
        var mounts: [Mount] = []
        var devices: [DeviceSpec] = []
        var annotations: [String: String] = [:]

        init() {}

        init(decoding bytes: ArraySlice<UInt8>) throws(ProtobufReader.Malformed) {
            var reader = ProtobufReader(bytes)
            while let (field, value) = try reader.next() {
                guard let slice = value.slice else { continue }
                var nested = ProtobufReader(slice)
                var strings: [Int: String] = [:], flag = false
                while let (nestedField, nestedValue) = try nested.next() {
                    if case .varint = nestedValue { flag = nestedValue.bool } else { strings[nestedField] = nestedValue.string }
                }
                switch field {
                case 1: envs[strings[1] ?? ""] = strings[2] ?? ""
                case 2: mounts.append(Mount(containerPath: strings[1] ?? "", hostPath: strings[2] ?? "", readOnly: flag))
                case 3: devices.append(DeviceSpec(containerPath: strings[1] ?? "", hostPath: strings[2] ?? "", permissions: strings[3] ?? ""))
                case 4: annotations[strings[1] ?? ""] = strings[2] ?? ""
                default: break
                }
            }
        }
    }

    /// `AllocateResponse { repeated ContainerAllocateResponse container_responses = 1 }`.
    static func allocations(decoding bytes: [UInt8]) throws(ProtobufReader.Malformed) -> [ContainerAllocation] {
        var result: [ContainerAllocation] = []
        var reader = ProtobufReader(bytes)
        while let (field, value) = try reader.next() {
            guard field == 1, let slice = value.slice else { continue }
            result.append(try ContainerAllocation(decoding: slice))
        }
        return result
    }
}
