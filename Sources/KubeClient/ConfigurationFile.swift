import Foundation
import KubeModel

/// Reads the small files a configuration refers to (tokens, certificates, kubeconfigs), turning every failure into a
/// `KubeError` with code `.configuration` that names the file and says what is wrong with it.
enum ConfigurationFile {
    /// Whether a regular file (or a symbolic link to one) exists at `path`.
    static func exists(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// The bytes of the file at `path`.
    ///
    /// - Parameter what: what the file is for, such as `"service account token"`, for the error message.
    /// - Throws: `KubeError` code `.configuration` when the file is missing, a directory, or unreadable.
    static func read(_ path: String, what: String) throws(KubeError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KubeError(code: .configuration, message: "\(what) file \(path) does not exist")
        }
        guard !isDirectory.boolValue else {
            throw KubeError(code: .configuration, message: "\(what) file \(path) is a directory, not a file")
        }
        do {
            return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw KubeError(
                code: .configuration, message: "\(what) file \(path) cannot be read: \(error.localizedDescription)")
        }
    }

    /// The file at `path` as UTF-8 text.
    ///
    /// - Throws: `KubeError` code `.configuration` as ``read(_:what:)`` does, or when the bytes are not UTF-8.
    static func readText(_ path: String, what: String) throws(KubeError) -> String {
        let bytes = try read(path, what: what)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KubeError(code: .configuration, message: "\(what) file \(path) is not UTF-8 text")
        }
        return text
    }

    /// `path` made absolute against `directory` when it is relative; absolute and empty paths are returned as given.
    static func resolve(_ path: String, against directory: String) -> String {
        guard !path.isEmpty, !path.hasPrefix("/") else {
            return path
        }
        return URL(fileURLWithPath: directory, isDirectory: true).appendingPathComponent(path).standardizedFileURL.path
    }

    /// The directory holding the file at `path`, made absolute against the working directory.
    static func directory(of path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.deletingLastPathComponent().path
    }
}
