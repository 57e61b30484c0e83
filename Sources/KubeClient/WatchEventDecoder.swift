import Foundation
import KubeModel

/// Decodes the lines of a watch stream, `{"type": ..., "object": ...}`, into `WatchEvent`s in one JSON pass each:
/// the envelope reads `type` first and then decodes `object` as `T`, as a `Status` (`ERROR`), or as just the
/// metadata's `resourceVersion` (`BOOKMARK`).
struct WatchEventDecoder<T: Decodable & Sendable> {
    private let decoder = JSONDecoder()

    /// The event on `line`.
    ///
    /// - Throws: `KubeError` built from the embedded `Status` for an `ERROR` event (`410` gives code `.gone`);
    ///   `KubeError` code `.decoding`, quoting the start of the line, when it is not JSON, has an unknown type, or
    ///   its object is not a `T`.
    func decode(_ line: Data) throws(KubeError) -> WatchEvent<T> {
        let envelope: Envelope
        do {
            envelope = try decoder.decode(Envelope.self, from: line)
        } catch {
            throw KubeError(
                code: .decoding,
                message: "a watch event is not a valid \(T.self) event: \(error); the line starts with "
                    + TransportFailure.snippet(line))
        }
        switch envelope.event {
        case .event(let event):
            return event
        case .error(let status):
            let code = status.code ?? (status.reason == "Expired" || status.reason == "Gone" ? 410 : 500)
            throw KubeError(statusCode: code, status: status)
        case .unknown(let type):
            throw KubeError(
                code: .decoding,
                message: "a watch event has the unknown type \"\(type)\"; the line starts with "
                    + TransportFailure.snippet(line))
        }
    }

    private struct Envelope: Decodable {
        enum Event {
            case event(WatchEvent<T>)
            case error(Status)
            case unknown(String)
        }

        var event: Event

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let type = try container.decode(String.self, forKey: .type)
            switch type {
            case "ADDED": event = .event(.added(try container.decode(T.self, forKey: .object)))
            case "MODIFIED": event = .event(.modified(try container.decode(T.self, forKey: .object)))
            case "DELETED": event = .event(.deleted(try container.decode(T.self, forKey: .object)))
            case "BOOKMARK":
                let bookmark = try container.decode(Bookmark.self, forKey: .object)
                event = .event(.bookmark(resourceVersion: bookmark.metadata.resourceVersion))
            case "ERROR": event = .error(try container.decode(Status.self, forKey: .object))
            default: event = .unknown(type)
            }
        }

        enum CodingKeys: String, CodingKey {
            case type, object
        }
    }

    /// The part of a `BOOKMARK` event's object that matters.
    private struct Bookmark: Decodable {
        struct Metadata: Decodable {
            var resourceVersion: String
        }

        var metadata: Metadata
    }
}
