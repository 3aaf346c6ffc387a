import KubeModel
import Testing

@testable import ControlPlane

/// The rolling update's arithmetic, as kube-controller-manager computes it.
struct DeploymentRolloutTests {
    static func spec(replicas: Int32, surge: IntOrString, unavailable: IntOrString) -> DeploymentSpec {
        var spec = DeploymentSpec(replicas: replicas)
        spec.strategy = DeploymentStrategy(type: "RollingUpdate", rollingUpdate: RollingUpdateDeployment(maxUnavailable: unavailable, maxSurge: surge))
        return spec
    }

    static func replicaSet(_ name: String, replicas: Int32, available: Int32, created: Int64) -> ReplicaSet {
        var replicaSet = ReplicaSet(metadata: ObjectMeta(name: name), spec: ReplicaSetSpec(replicas: replicas))
        replicaSet.metadata.creationTimestamp = Timestamp(seconds: created)
        var status = ReplicaSetStatus(replicas: replicas)
        status.availableReplicas = available
        replicaSet.status = status
        return replicaSet
    }

    @Test func fencepostsRoundAsKubernetes() {
        #expect(DeploymentRollout.fenceposts(Self.spec(replicas: 2, surge: "25%", unavailable: "25%")) == (1, 0))
        #expect(DeploymentRollout.fenceposts(Self.spec(replicas: 10, surge: "25%", unavailable: "25%")) == (3, 2))
        #expect(DeploymentRollout.fenceposts(Self.spec(replicas: 3, surge: 0, unavailable: 0)) == (0, 1))
        #expect(DeploymentRollout.fenceposts(Self.spec(replicas: 0, surge: 0, unavailable: 0)) == (0, 0))
        #expect(DeploymentRollout.fenceposts(Self.spec(replicas: 4, surge: 1, unavailable: 9)) == (1, 4))
        // The largest values stay in range: 2³¹−1 replicas at 2³¹−1 percent.
        #expect(DeploymentRollout.fenceposts(Self.spec(replicas: .max, surge: "2147483647%", unavailable: "100%")).surge == (Int64(Int32.max) * Int64(Int32.max) + 99) / 100)
    }

    @Test func rollingUpdateKeepsWithinSurgeAndAvailability() {
        let spec = Self.spec(replicas: 4, surge: 1, unavailable: 1)
        let old = Self.replicaSet("old", replicas: 4, available: 4, created: 1)
        // One new pod may be added (4 + 1 surge).
        #expect(DeploymentRollout.newReplicaCount(spec, all: [old], newReplicas: 0) == 1)
        let new = Self.replicaSet("new", replicas: 1, available: 0, created: 2)
        // One old pod may go (3 of 4 stay available); the new one is not available yet.
        #expect(DeploymentRollout.oldReplicaCounts(spec, new: new, old: [old]) == ["old": 3])
        // Unavailable old pods go first, without counting against availability.
        let sick = Self.replicaSet("sick", replicas: 2, available: 0, created: 0)
        let counts = DeploymentRollout.oldReplicaCounts(spec, new: new, old: [sick, old])
        #expect(counts["sick"] == 0 && counts["old"] == 3, "\(counts)")
    }

    @Test func templateHashIsStableAndIgnoresItsOwnLabel() {
        let template = PodTemplateSpec(metadata: ObjectMeta(labels: ["app": "web", "tier": "front", "zone": "kitchen"]),
                                       spec: PodSpec(containers: [Container(name: "c", image: "busybox")]))
        let hash = DeploymentRollout.templateHash(template, collisionCount: nil)
        #expect(hash == DeploymentRollout.templateHash(template, collisionCount: nil))
        #expect(hash != DeploymentRollout.templateHash(template, collisionCount: 1))
        #expect(hash.allSatisfy { "bcdfghjklmnpqrstvwxz2456789".contains($0) })
        var labelled = template
        labelled.metadata?.labels?[DeploymentRollout.templateHashLabel] = hash
        #expect(DeploymentRollout.sameIgnoringHash(template, labelled))
        var changed = template
        changed.spec?.containers[0].image = "busybox:1.37"
        #expect(!DeploymentRollout.sameIgnoringHash(template, changed))
    }
}
