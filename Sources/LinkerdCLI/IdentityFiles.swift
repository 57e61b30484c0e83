import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file an identity command creates.
struct OutputFile: Sendable, Hashable {
    var path: String
    var contents: String
    /// The permission bits: 0600 for private keys, 0644 for certificates.
    var mode: mode_t
}

/// Reading the identity commands' inputs and writing their outputs.
///
/// Outputs are all-or-nothing: ``checkOutputs(_:force:)`` runs before anything is generated, and ``create(_:force:)``
/// writes every file to a temporary file next to its destination before moving any into place. Without `force`
/// the move is a hard link, which fails rather than replace a file that appeared in the meantime.
enum IdentityFiles {
    /// The text of `path`, or of standard input for `-`.
    ///
    /// - Throws: ``IdentityError`` when the path does not exist, is a directory, cannot be read or is not UTF-8
    ///   (which a DER file is not).
    static func readText(_ path: String, context: CommandContext) throws(IdentityError) -> String {
        let source = path == "-" ? "stdin" : path
        let data: Data
        if path == "-" {
            data = context.readStandardInput()
        } else {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw IdentityError(source: path, reason: "no such file or directory")
            }
            guard !isDirectory.boolValue else {
                throw IdentityError(source: path, reason: "a directory, expected a file")
            }
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw IdentityError(source: path, reason: "cannot read the file (permission denied?)")
            }
            data = contents
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw IdentityError(
                source: source, reason: "not PEM text (binary data; for DER input: openssl x509 -inform der)")
        }
        return text
    }

    /// Checks that `paths` can be created: distinct, in existing directories, and (without `force`) not existing.
    static func checkOutputs(_ paths: [String], force: Bool) throws(IdentityError) {
        var seen: Set<String> = []
        for path in paths {
            let standardized = URL(fileURLWithPath: path).standardizedFileURL.path
            guard seen.insert(standardized).inserted else {
                throw IdentityError(source: path, reason: "given as both the certificate and the key output")
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                guard !isDirectory.boolValue else {
                    throw IdentityError(source: path, reason: "a directory, expected a file name")
                }
                guard force else {
                    throw IdentityError(source: path, reason: "already exists (--force overwrites it)")
                }
            }
            let directory = (path as NSString).deletingLastPathComponent
            let parent = directory.isEmpty ? "." : directory
            guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw IdentityError(source: path, reason: "the directory \(parent) does not exist")
            }
        }
    }

    /// Writes `files`, all or none (see the type's documentation). With `force`, existing files are replaced
    /// atomically; a failure after some were replaced leaves those replaced.
    static func create(_ files: [OutputFile], force: Bool) throws(IdentityError) {
        var temporaries: [String] = []
        defer {
            for temporary in temporaries { unlink(temporary) }
        }
        for file in files {
            temporaries.append(try writeTemporary(file))
        }
        var placed: [String] = []
        for (file, temporary) in zip(files, temporaries) {
            let result = force ? rename(temporary, file.path) : link(temporary, file.path)
            guard result == 0 else {
                let reason = String(cString: strerror(errno))
                if !force {
                    for path in placed { unlink(path) }
                }
                throw IdentityError(source: file.path, reason: "cannot create the file: \(reason)")
            }
            placed.append(file.path)
        }
    }

    /// Writes `file`'s contents to a new file with its mode beside its destination, and returns that file's path.
    private static func writeTemporary(_ file: OutputFile) throws(IdentityError) -> String {
        let directory = (file.path as NSString).deletingLastPathComponent
        let name = ".\((file.path as NSString).lastPathComponent).\(UUID().uuidString).tmp"
        let temporary = directory.isEmpty ? name : (directory as NSString).appendingPathComponent(name)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, file.mode)
        guard descriptor >= 0 else {
            throw IdentityError(
                source: file.path, reason: "cannot create the file: \(String(cString: strerror(errno)))")
        }
        let bytes = Array(file.contents.utf8)
        var written = 0
        var failure: String?
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else {
                failure = String(cString: strerror(errno))
                break
            }
            written += count
        }
        // The umask may have cleared bits of the mode; set it exactly.
        if failure == nil, fchmod(descriptor, file.mode) != 0 || fsync(descriptor) != 0 {
            failure = String(cString: strerror(errno))
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw IdentityError(source: file.path, reason: "cannot write the file: \(failure)")
        }
        return temporary
    }
}
