/// kube-apiserver's numeric rules for the cluster objects nodes and the control plane write:
/// Node quantities and ports, Lease durations, CSR certificate lifetimes.
public enum ClusterObjectValidation {
    /// Node capacity and allocatable are non-negative; the kubelet port is a TCP port or unset.
    public static func problems(_ node: Node) -> [StatusCause] {
        var problems = FieldProblems()
        problems.nonNegative(node.status?.capacity, "status.capacity")
        problems.nonNegative(node.status?.allocatable, "status.allocatable")
        if let port = node.status?.daemonEndpoints?.kubeletEndpoint?.port, port != 0 {
            problems.inRange(port, 1...65535, "status.daemonEndpoints.kubeletEndpoint.Port")
        }
        return problems.causes
    }

    /// `leaseDurationSeconds` > 0 and `leaseTransitions` ≥ 0, as `ValidateLeaseSpec`.
    public static func problems(_ lease: Lease) -> [StatusCause] {
        var problems = FieldProblems()
        problems.atLeast(lease.spec?.leaseDurationSeconds, 1, "spec.leaseDurationSeconds")
        problems.atLeast(lease.spec?.leaseTransitions, 0, "spec.leaseTransitions")
        return problems.causes
    }

    /// `expirationSeconds` of at least 600 (the signer shortens longer ones to its own maximum).
    public static func problems(_ request: CertificateSigningRequest) -> [StatusCause] {
        var problems = FieldProblems()
        if let seconds = request.spec.expirationSeconds, seconds < 600 {
            problems.invalid("spec.expirationSeconds", "\(seconds)", "may not specify a duration less than 600 seconds (10 minutes)")
        }
        return problems.causes
    }
}
