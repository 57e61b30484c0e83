/// The version of this Linkerd implementation, written into `linkerd.io/created-by` and used as the default
/// `linkerdVersion` (and so as the default proxy image tag).
public enum LinkerdVersion {
    /// The version every component reports unless the mesh configuration says otherwise.
    public static let current = "edge-swift-0.1.0"
}

/// The annotation, label, container and volume names that make up Linkerd's user contract.
///
/// Each key is named once here; the injector, the uninjector, the controller and the CLI all use these constants.
public enum MeshKeys {
    // MARK: - Annotations and labels set by users

    /// `enabled`, `disabled` or `ingress`, on a pod (template) or a namespace.
    public static let inject = "linkerd.io/inject"
    /// The value of ``inject`` that turns injection on.
    public static let injectEnabled = "enabled"
    /// The value of ``inject`` that turns injection off.
    public static let injectDisabled = "disabled"
    /// The value of ``inject`` that turns injection on in ingress mode.
    public static let injectIngress = "ingress"
    /// Ours: `enabled` on a workload or namespace opts its pods into restarts when the mesh configuration changes.
    public static let autoRestart = "config.linkerd.io/auto-restart"

    // MARK: - Annotations and labels set by the injector

    /// `linkerd/proxy-injector <version>` or `linkerd/cli <version>`.
    public static let createdBy = "linkerd.io/created-by"
    /// The proxy image tag the pod was injected with.
    public static let proxyVersion = "linkerd.io/proxy-version"
    /// Lowercase hex SHA-256 of the trust anchors PEM the pod was injected with.
    public static let trustRootSHA256 = "linkerd.io/trust-root-sha256"
    /// Label: the control-plane namespace of the mesh the pod belongs to.
    public static let controlPlaneNamespaceLabel = "linkerd.io/control-plane-ns"
    /// Label: the namespace of the injected workload.
    public static let workloadNamespaceLabel = "linkerd.io/workload-ns"
    /// Label prefix of `linkerd.io/proxy-<ownerkind>: <owner name>`.
    public static let proxyOwnerLabelPrefix = "linkerd.io/proxy-"
    /// Label on control-plane objects and pod templates; such objects are never injected by the CLI.
    public static let controlPlaneComponentLabel = "linkerd.io/control-plane-component"

    // MARK: - Configuration annotations (`config.linkerd.io/` unless noted)

    public static let proxyImage = "config.linkerd.io/proxy-image"
    public static let proxyVersionOverride = "config.linkerd.io/proxy-version"
    public static let imagePullPolicy = "config.linkerd.io/image-pull-policy"
    public static let controlPort = "config.linkerd.io/control-port"
    public static let inboundPort = "config.linkerd.io/inbound-port"
    public static let adminPort = "config.linkerd.io/admin-port"
    public static let outboundPort = "config.linkerd.io/outbound-port"
    public static let podInboundPorts = "config.linkerd.io/pod-inbound-ports"
    public static let skipInboundPorts = "config.linkerd.io/skip-inbound-ports"
    public static let skipOutboundPorts = "config.linkerd.io/skip-outbound-ports"
    public static let skipSubnets = "config.linkerd.io/skip-subnets"
    public static let opaquePorts = "config.linkerd.io/opaque-ports"
    public static let proxyCPURequest = "config.linkerd.io/proxy-cpu-request"
    public static let proxyCPULimit = "config.linkerd.io/proxy-cpu-limit"
    public static let proxyCPURatioLimit = "config.linkerd.io/proxy-cpu-ratio-limit"
    public static let proxyMemoryRequest = "config.linkerd.io/proxy-memory-request"
    public static let proxyMemoryLimit = "config.linkerd.io/proxy-memory-limit"
    public static let proxyEphemeralStorageRequest = "config.linkerd.io/proxy-ephemeral-storage-request"
    public static let proxyEphemeralStorageLimit = "config.linkerd.io/proxy-ephemeral-storage-limit"
    public static let proxyUID = "config.linkerd.io/proxy-uid"
    public static let proxyGID = "config.linkerd.io/proxy-gid"
    public static let proxyAdminShutdown = "config.linkerd.io/proxy-admin-shutdown"
    public static let proxyLogLevel = "config.linkerd.io/proxy-log-level"
    public static let proxyLogFormat = "config.linkerd.io/proxy-log-format"
    public static let proxyLogHTTPHeaders = "config.linkerd.io/proxy-log-http-headers"
    public static let enableExternalProfiles = "config.linkerd.io/enable-external-profiles"
    public static let requireIdentityInboundPorts = "config.linkerd.io/proxy-require-identity-inbound-ports"
    public static let metricsHostnameLabels = "config.linkerd.io/proxy-metrics-hostname-labels"
    public static let outboundConnectTimeout = "config.linkerd.io/proxy-outbound-connect-timeout"
    public static let inboundConnectTimeout = "config.linkerd.io/proxy-inbound-connect-timeout"
    public static let outboundDiscoveryCacheUnusedTimeout =
        "config.linkerd.io/proxy-outbound-discovery-cache-unused-timeout"
    public static let inboundDiscoveryCacheUnusedTimeout =
        "config.linkerd.io/proxy-inbound-discovery-cache-unused-timeout"
    public static let disableOutboundProtocolDetectTimeout =
        "config.linkerd.io/proxy-disable-outbound-protocol-detect-timeout"
    public static let disableInboundProtocolDetectTimeout =
        "config.linkerd.io/proxy-disable-inbound-protocol-detect-timeout"
    public static let proxyAwait = "config.linkerd.io/proxy-await"
    public static let defaultInboundPolicy = "config.linkerd.io/default-inbound-policy"
    public static let accessLog = "config.linkerd.io/access-log"
    public static let shutdownGracePeriod = "config.linkerd.io/shutdown-grace-period"
    public static let nativeSidecar = "config.linkerd.io/proxy-enable-native-sidecar"
    public static let nativeSidecarBeta = "config.beta.linkerd.io/proxy-enable-native-sidecar"
    public static let nativeSidecarAlpha = "config.alpha.linkerd.io/proxy-enable-native-sidecar"
    public static let additionalEnv = "config.linkerd.io/proxy-additional-env"
    public static let enableDebugSidecar = "config.linkerd.io/enable-debug-sidecar"
    public static let debugImage = "config.linkerd.io/debug-image"
    public static let debugImageVersion = "config.linkerd.io/debug-image-version"
    public static let debugImagePullPolicy = "config.linkerd.io/debug-image-pull-policy"
    public static let enableGateway = "config.linkerd.io/enable-gateway"
    public static let closeWaitTimeout = "config.linkerd.io/close-wait-timeout"
    public static let waitBeforeExitSeconds = "config.alpha.linkerd.io/proxy-wait-before-exit-seconds"

    // MARK: - Containers and volumes

    public static let proxyContainerName = "linkerd-proxy"
    public static let initContainerName = "linkerd-init"
    public static let networkValidatorContainerName = "linkerd-network-validator"
    public static let debugContainerName = "linkerd-debug"
    public static let xtablesLockVolumeName = "linkerd-proxy-init-xtables-lock"
    public static let identityEndEntityVolumeName = "linkerd-identity-end-entity"
    public static let identityTokenVolumeName = "linkerd-identity-token"

    /// The containers the injector adds, by name (the uninjector removes exactly these).
    public static let injectedContainerNames: Set<String> = [
        proxyContainerName, initContainerName, networkValidatorContainerName, debugContainerName,
    ]
    /// The volumes the injector adds, by name (the uninjector removes exactly these).
    public static let injectedVolumeNames: Set<String> = [
        xtablesLockVolumeName, identityEndEntityVolumeName, identityTokenVolumeName,
    ]
}
