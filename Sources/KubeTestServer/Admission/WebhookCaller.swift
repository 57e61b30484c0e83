import AsyncHTTPClient
import Foundation
import KubeModel
import NIOCore
import NIOHTTP1
import NIOSSL

/// Calls one mutating webhook with an AdmissionReview, as kube-apiserver does.
///
/// A `clientConfig.url` must be `https`. A `clientConfig.service` is called, as kube-apiserver calls it, at
/// `https://<name>.<namespace>.svc:<port><path>` with the certificate verified for the host name
/// `<name>.<namespace>.svc`; since nothing here resolves cluster DNS or routes Service IPs, the Service must have
/// been given a loopback address with `KubeTestServer.routeService`, or it counts as unreachable. The server's
/// certificate is verified (including the host name) against the PEM bundle in `clientConfig.caBundle`, or the
/// system roots without one. The call must finish within the webhook's `timeoutSeconds` (default 10). A connection
/// or TLS failure fails the call at once (no retries).
struct WebhookCaller: Sendable {
    /// One client for the process, never shut down (like `HTTPClient.shared`), that neither retries connection
    /// establishment nor follows redirects, as kube-apiserver does not.
    private static let client = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)

    private static var configuration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return configuration
    }

    /// Why a call failed: kube-apiserver's "failed calling webhook" cases, worded after its messages.
    struct Failure: Error, Sendable {
        var message: String
    }

    /// The largest response body read.
    static let maxResponseBytes = 3 * 1024 * 1024

    /// Calls the webhook; `serviceRoutes` are the loopback addresses given to Services with `routeService`.
    func call(
        _ webhook: MutatingWebhookConfiguration.Webhook, review: AdmissionReview,
        serviceRoutes: [KubeTestServer.ServiceKey: KubeTestServer.ServiceRoute]
    ) async -> Result<AdmissionReview.Response, Failure> {
        if let service = webhook.clientConfig.service {
            let key = KubeTestServer.ServiceKey(namespace: service.namespace, name: service.name)
            guard let route = serviceRoutes[key] else {
                return .failure(
                    Failure(
                        message: "failed to call webhook: service \"\(service.name).\(service.namespace).svc\" "
                            + "has no endpoints (no KubeTestServer.routeService for it)"))
            }
            let host = "\(service.name).\(service.namespace).svc"
            // The host name is verified against the certificate; the connection goes to the routed address.
            var configuration = Self.configuration
            configuration.dnsOverride = [host: route.host]
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            let result = await call(
                webhook, review: review, url: "https://\(host):\(route.port)\(service.path ?? "/")", client: client)
            try? await client.shutdown()
            return result
        }
        guard let url = webhook.clientConfig.url else {
            return .failure(Failure(message: "failed to call webhook: clientConfig has neither url nor service"))
        }
        return await call(webhook, review: review, url: url, client: Self.client)
    }

    private func call(
        _ webhook: MutatingWebhookConfiguration.Webhook, review: AdmissionReview, url: String, client: HTTPClient
    ) async -> Result<AdmissionReview.Response, Failure> {
        guard url.lowercased().hasPrefix("https://") else {
            return .failure(Failure(message: "failed to call webhook: webhook URL \"\(url)\" is not https"))
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let bundle = webhook.clientConfig.caBundle {
            guard let pem = Data(base64Encoded: bundle),
                let roots = try? NIOSSLCertificate.fromPEMBytes(Array(pem)), !roots.isEmpty
            else {
                return .failure(
                    Failure(message: "failed to call webhook: clientConfig.caBundle holds no PEM certificate"))
            }
            tls.trustRoots = .certificates(roots)
        }
        let body: Data
        do {
            body = try JSONEncoder().encode(review)
        } catch {
            return .failure(Failure(message: "failed to encode the AdmissionReview: \(error)"))
        }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, */*")
        request.body = .bytes(ByteBuffer(bytes: body))
        request.tlsConfiguration = tls
        let timeout = Int64(webhook.timeoutSeconds ?? 10)
        let responseBody: ByteBuffer
        let call = request
        do {
            // The whole exchange, body included, must fit in timeoutSeconds, as in kube-apiserver.
            let (status, body) = try await withThrowingTaskGroup(of: (HTTPResponseStatus, ByteBuffer)?.self) { group in
                group.addTask {
                    let response = try await client.execute(call, timeout: .seconds(timeout))
                    return (response.status, try await response.body.collect(upTo: Self.maxResponseBytes))
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeout))
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let exchange = first else {
                    throw WebhookTimeout(seconds: timeout)
                }
                return exchange
            }
            responseBody = body
            guard status == .ok else {
                return .failure(
                    Failure(
                        message: "received invalid webhook response: the server responded with HTTP "
                            + "\(status.code)"))
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            // The client's own deadline and the timer above race; either way it is the webhook's timeout.
            let timedOut = WebhookTimeout(seconds: timeout)
            return .failure(Failure(message: "failed to call webhook: Post \"\(url)\": \(timedOut)"))
        } catch {
            return .failure(Failure(message: "failed to call webhook: Post \"\(url)\": \(error)"))
        }
        let data = Data(responseBody.readableBytesView)
        guard let answer = try? JSONDecoder().decode(AdmissionReview.self, from: data) else {
            return .failure(Failure(message: "received invalid webhook response: the body is not an AdmissionReview"))
        }
        guard let response = answer.response else {
            return .failure(Failure(message: "webhook response was absent"))
        }
        let uid = review.request?.uid ?? ""
        guard response.uid == uid else {
            return .failure(Failure(message: "expected response.uid=\"\(uid)\", got \"\(response.uid)\""))
        }
        return .success(response)
    }
}

/// The webhook did not answer completely within its `timeoutSeconds`.
private struct WebhookTimeout: Error, CustomStringConvertible {
    let seconds: Int64

    var description: String { "context deadline exceeded (timeoutSeconds: \(seconds))" }
}
