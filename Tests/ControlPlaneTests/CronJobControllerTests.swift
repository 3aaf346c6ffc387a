import Foundation
import KubeModel
import Logging
import Testing

@testable import ControlPlane

/// The cron job controller's decisions at chosen instants, against a real store: suspend,
/// a missed start past its deadline, history limits, Forbid and Replace.
struct CronJobControllerTests {
    static let minute: Int64 = 1_798_761_600  // 2027-01-01T00:00:00Z, a minute boundary

    static func setUp() throws -> (ObjectStore, CronJobController, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cron-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try ObjectStore(path: directory.appendingPathComponent("state.db").path)
        try APIServer.ensureSystemNamespaces(in: store)
        return (store, CronJobController(store: store, logger: Logger(label: "test")), directory)
    }

    static func cronJob(_ store: ObjectStore, _ spec: String) throws -> CronJob {
        let yaml = """
            apiVersion: batch/v1
            kind: CronJob
            metadata: {name: tick, namespace: default}
            spec:
              schedule: "* * * * *"
            \(spec)
              jobTemplate:
                spec:
                  template:
                    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
            """
        var tree = try KubeYAML.documents(Array(yaml.utf8))[0]
        tree = ResourceDefaults.apply(tree, resource: .cronJobs)
        tree.set(["metadata", "creationTimestamp"], nil)
        var created = try store.create(.cronJobs, namespace: "default", name: "tick", object: tree)
        // Created well before the instants the tests choose.
        created = try store.update(.cronJobs, namespace: "default", name: "tick") { object in
            var next = object
            next.set(["metadata", "creationTimestamp"], .string(Timestamp(seconds: minute - 3600).description))
            return next
        }
        return try KubeJSON.decode(CronJob.self, from: created)
    }

    static func state(_ store: ObjectStore) throws -> (CronJob, [Job]) {
        let cronJob = try KubeJSON.decode(CronJob.self, from: try #require(try store.get(.cronJobs, namespace: "default", name: "tick")))
        let jobs = try store.list(.jobs, namespace: "default").items.map { try KubeJSON.decode(Job.self, from: $0) }
        return (cronJob, jobs)
    }

    static func finish(_ store: ObjectStore, _ job: Job, as type: String) throws {
        try store.update(.jobs, namespace: "default", name: job.metadata.name ?? "") { object in
            var next = object
            next.set(["status", "conditions"], [["type": .string(type), "status": "True"]])
            next.set(["status", "completionTime"], .string(Timestamp(seconds: minute).description))
            return next
        }
    }

    @Test func suspendDeadlinesAndHistory() throws {
        let (store, controller, directory) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Self.cronJob(store, "  suspend: true\n  startingDeadlineSeconds: 30\n  successfulJobsHistoryLimit: 1")

        // Suspended: nothing runs.
        var (cronJob, jobs) = try Self.state(store)
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 5))
        #expect(try Self.state(store).1.isEmpty)

        // Resumed, but 45 s after the scheduled minute with a 30 s deadline: missed, not run late.
        try store.update(.cronJobs, namespace: "default", name: "tick") { object in
            var next = object
            next.set(["spec", "suspend"], .bool(false))
            return next
        }
        (cronJob, jobs) = try Self.state(store)
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 45))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.isEmpty)
        #expect(cronJob.status?.lastScheduleTime?.seconds == Self.minute)

        // Within the deadline: one job, named by its minute, listed as active.
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 65))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.map(\.metadata.name) == ["tick-\((Self.minute + 60) / 60)"])
        #expect(cronJob.status?.active?.map(\.name) == jobs.map(\.metadata.name))
        // The same instant again (a restart): no second job.
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 66))
        #expect(try Self.state(store).1.count == 1)

        // Two successful runs with a history limit of 1: the older goes.
        try Self.finish(store, jobs[0], as: "Complete")
        (cronJob, jobs) = try Self.state(store)
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 125))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.count == 2)
        try Self.finish(store, try #require(jobs.first { $0.metadata.name == "tick-\((Self.minute + 120) / 60)" }), as: "Complete")
        (cronJob, jobs) = try Self.state(store)
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 130))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.map(\.metadata.name) == ["tick-\((Self.minute + 120) / 60)"])
        #expect(cronJob.status?.lastSuccessfulTime != nil)
    }

    @Test func forbidSkipsAndReplaceReplaces() throws {
        let (store, controller, directory) = try Self.setUp()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Self.cronJob(store, "  concurrencyPolicy: Forbid")
        var (cronJob, jobs) = try Self.state(store)
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 1))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.count == 1)
        // Still running at the next minute: Forbid skips it.
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 61))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.count == 1)
        // Replace: the running job goes, a new one starts.
        try store.update(.cronJobs, namespace: "default", name: "tick") { object in
            var next = object
            next.set(["spec", "concurrencyPolicy"], "Replace")
            return next
        }
        (cronJob, jobs) = try Self.state(store)
        _ = try controller.sync(cronJob, jobs: jobs, now: Timestamp(seconds: Self.minute + 62))
        (cronJob, jobs) = try Self.state(store)
        #expect(jobs.map(\.metadata.name) == ["tick-\((Self.minute + 60) / 60)"])
    }
}
