import Foundation
import KubeModel
import LinkerdCore
import Logging

/// The `type` of a Kubernetes Event.
public enum EventType: String, Sendable {
    case normal = "Normal"
    case warning = "Warning"
}

/// Creates `core/v1` Events about objects, as client-go's event recorder does, without its aggregation.
///
/// Each call creates one Event in the object's namespace (`default` for cluster-scoped objects) named
/// `<object name>.<hex>`, where the hex is the clock's time in nanoseconds followed by random bits, with
/// `involvedObject`, `reason`, `message`, `type`, `source.component` and `reportingComponent` set to the component,
/// `firstTimestamp` = `lastTimestamp` = the clock's now, and `count` 1.
///
/// Recording never throws: an Event is a diagnostic, so a failure to create one is logged (warning) and dropped.
public struct EventRecorder: Sendable {
    /// The longest Kubernetes object name.
    private static let maximumNameLength = 253

    private let api: any KubeAPI
    private let component: String
    private let clock: any WallClock
    private let logger: Logger

    /// - Parameter component: the reporting component, e.g. `linkerd-proxy-injector`.
    public init(api: any KubeAPI, component: String, clock: any WallClock, logger: Logger) {
        self.api = api
        self.component = component
        self.clock = clock
        self.logger = logger
    }

    /// Creates an Event about `object`; returns once the API server answered (or the attempt failed).
    public func record(_ type: EventType, reason: String, message: String, about object: ObjectReference) async {
        let event = makeEvent(type, reason: reason, message: message, about: object)
        do {
            _ = try await api.create(event)
            logger.debug(
                "recorded an event",
                metadata: ["reason": "\(reason)", "object": "\(Self.describe(object))", "event": "\(event.key)"])
        } catch {
            logger.warning(
                "cannot record an event",
                metadata: ["reason": "\(reason)", "object": "\(Self.describe(object))", "error": "\(error)"])
        }
    }

    func makeEvent(_ type: EventType, reason: String, message: String, about object: ObjectReference) -> Event {
        let now = clock.now()
        let timestamp = KubeTime.format(now)
        let nanoseconds = UInt64(max(0, now.timeIntervalSince1970 * 1e9))
        let random = String(UInt16.random(in: .min ... .max), radix: 16)
        let suffix = String(nanoseconds, radix: 16) + String(repeating: "0", count: 4 - random.count) + random
        let objectName = object.name ?? "unnamed"
        let name = String(objectName.prefix(Self.maximumNameLength - suffix.count - 1)) + "." + suffix
        let namespace = object.namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        var event = Event(
            metadata: ObjectMeta(name: name, namespace: namespace), involvedObject: object, reason: reason,
            message: message, type: type.rawValue)
        event.source = Event.EventSource(component: component)
        event.firstTimestamp = timestamp
        event.lastTimestamp = timestamp
        event.count = 1
        event.reportingComponent = component
        return event
    }

    private static func describe(_ object: ObjectReference) -> String {
        let kind = object.kind ?? "object"
        if let namespace = object.namespace, !namespace.isEmpty {
            return "\(kind) \(namespace)/\(object.name ?? "")"
        }
        return "\(kind) \(object.name ?? "")"
    }
}
