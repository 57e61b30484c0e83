import Foundation
import KubeModel
import LinkerdController
import SwiftASN1
import X509

/// The serving names of the injector in namespace `linkerd`.
let injectorHost = "linkerd-proxy-injector.linkerd.svc"

/// Base64 of UTF-8 text, as in a Secret's `data`.
func base64(_ text: String) -> String {
    Data(text.utf8).base64EncodedString()
}

/// The UTF-8 text of base64 `data`, or nil.
func unbase64(_ value: String?) -> String? {
    value.flatMap { Data(base64Encoded: $0) }.flatMap { String(data: $0, encoding: .utf8) }
}

/// The certificates of a PEM text, in order.
func certificates(inPEM text: String) throws -> [Certificate] {
    try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }
}

/// The DNS subject alternative names of a certificate.
func dnsNames(of certificate: Certificate) throws -> [String] {
    try certificate.extensions.subjectAlternativeNames?.compactMap { name in
        if case .dnsName(let value) = name { value } else { nil }
    } ?? []
}

/// Whether `issuer`'s key signed `certificate`.
func isSigned(_ certificate: Certificate, by issuer: Certificate) -> Bool {
    certificate.issuer == issuer.subject && issuer.publicKey.isValidSignature(certificate.signature, for: certificate)
}

/// A `WebhookCertificateBundle` parsed back from a stored Secret's data.
func storedBundle(_ secret: Secret?) throws -> WebhookCertificateBundle {
    try WebhookCertificateBundle(secretData: secret?.data ?? [:])
}
