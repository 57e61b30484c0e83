import AsyncHTTPClient
import Foundation
import KubeModel
import NIOCore
import NIOHTTP1
import NIOSSL

/// Calls one mutating webhook with an AdmissionReview, as kube-apiserver does.
///
/// Only `clientConfig.url` is modelled, and it must be `https`; the server's certificate is verified (including
/// the host name) against the PEM bundle in `clientConfig.caBundle`, or the system roots without one.
/// `clientConfig.service` cannot be resolved here and counts as unreachable. The call must finish within the
/// webhook's `timeoutSeconds` (default 10). A connection or TLS failure fails the call at once (no retries).
struct WebhookCaller: Sendable {
    /// One client for the process, never shut down (like `HTTPClient.shared`), that neither retries connection
    /// establishment nor follows redirects, as kube-apiserver does not.
    private static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// Why a call failed: kube-apiserver's "failed calling webhook" cases, worded after its messages.
    struct Failure: Error, Sendable {
        var message: String
    }

    /// The largest response body read.
    static let maxResponseBytes = 3 * 1024 * 1024

    func call(_ webhook: MutatingWebhookConfiguration.Webhook, review: AdmissionReview) async
        -> Result<AdmissionReview.Response, Failure>
    {
        guard let url = webhook.clientConfig.url else {
            let service = webhook.clientConfig.service.map { "\($0.namespace)/\($0.name)" } ?? "none"
            return .failure(
                Failure(
                    message: "failed to call webhook: clientConfig.service (\(service)) cannot be resolved by "
                        + "KubeTestServer; use clientConfig.url"))
        }
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
                    let response = try await Self.client.execute(call, timeout: .seconds(timeout))
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
