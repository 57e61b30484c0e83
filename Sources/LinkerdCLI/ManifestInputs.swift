import Foundation
import LinkerdCore

/// What a command reads besides files: standard input, replaced by a string in tests.
public struct CommandContext: Sendable {
    /// Reads all of standard input; called at most once per command.
    public var readStandardInput: @Sendable () -> Data

    public init(readStandardInput: @escaping @Sendable () -> Data) {
        self.readStandardInput = readStandardInput
    }

    /// The process's standard input.
    public static let process = CommandContext { FileHandle.standardInput.readDataToEndOfFile() }

    /// `text` as standard input.
    public static func standardInput(_ text: String) -> CommandContext {
        CommandContext { Data(text.utf8) }
    }
}

/// Resolves a command's input arguments to the texts they name.
///
/// An argument is `-` (standard input, named `stdin` in messages), a file, or a directory: the `*.yaml`, `*.yml`
/// and `*.json` files in it, in lexical order of their names, and with `recursive` those of its subdirectories too
/// (each directory's files and subdirectories ordered together by name).
public enum ManifestInputs {
    private static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// The texts of `arguments`, in order.
    ///
    /// - Throws: ``ManifestError`` for a path that does not exist or cannot be read, a file that is not UTF-8, a
    ///   directory without manifests, or `-` given twice.
    public static func read(
        _ arguments: [String], recursive: Bool, context: CommandContext
    ) throws(ManifestError) -> [ManifestSource] {
        var sources: [ManifestSource] = []
        var readStandardInput = false
        for argument in arguments {
            if argument == "-" {
                guard !readStandardInput else {
                    throw ManifestError(source: "stdin", reason: "\"-\" is given more than once")
                }
                readStandardInput = true
                sources.append(try decode(context.readStandardInput(), name: "stdin"))
                continue
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                sources.append(try readFile(argument))
                continue
            }
            let files = try manifestFiles(in: argument, recursive: recursive)
            guard !files.isEmpty else {
                let scope = recursive ? "in it or its subdirectories" : "in it (--recursive reads subdirectories)"
                throw ManifestError(source: argument, reason: "a directory with no .yaml, .yml or .json file \(scope)")
            }
            for file in files {
                sources.append(try readFile(file))
            }
        }
        return sources
    }

    private static func manifestFiles(in directory: String, recursive: Bool) throws(ManifestError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw ManifestError(source: directory, reason: "cannot list the directory: \(error.localizedDescription)")
        }
        var files: [String] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                if recursive {
                    files += try manifestFiles(in: path, recursive: true)
                }
            } else if extensions.contains((name as NSString).pathExtension) {
                files.append(path)
            }
        }
        return files
    }

    /// The text of the file at `path`.
    ///
    /// - Throws: ``ManifestError`` when the path does not exist, is a directory, cannot be read or is not UTF-8.
    static func readFile(_ path: String) throws(ManifestError) -> ManifestSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ManifestError(source: path, reason: "no such file or directory")
        }
        guard !isDirectory.boolValue else {
            throw ManifestError(source: path, reason: "a directory, expected a file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ManifestError(source: path, reason: "cannot read the file (permission denied?)")
        }
        return try decode(data, name: path)
    }

    private static func decode(_ data: Data, name: String) throws(ManifestError) -> ManifestSource {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ManifestError(source: name, reason: "not UTF-8 text")
        }
        return ManifestSource(name: name, text: text)
    }
}
