#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads and atomic writes: the one place every file of the engine (PNG, weight
/// file, model file, detector file) goes through.

/// The most `readFile` reads unless told otherwise (2 GiB): larger files are refused before
/// anything is allocated for them.
public let defaultReadLimit = 1 << 31

/// Throws unless `path` can name a file: not empty, no NUL byte (C would cut it there and open
/// another file than the one named).
public func requireValidPath(_ path: String) throws(BGADError) {
    guard !path.isEmpty else { throw BGADError(.invalidArgument, "the path is empty") }
    guard !path.utf8.contains(0) else {
        throw BGADError(.invalidArgument, "the path '\(path.replacingNUL)' contains a NUL byte")
    }
}

extension String {
    /// The string with NUL bytes shown as `\0` (for messages).
    var replacingNUL: String { String(decoding: utf8.flatMap { $0 == 0 ? Array("\\0".utf8) : [$0] }, as: UTF8.self) }
}

/// Reads a whole regular file of at most `limit` bytes. A missing or unreadable file, a
/// directory, a device or pipe (`/dev/zero` would never end), or a larger file is an `.io`
/// error naming it, raised before the bytes are allocated.
public func readFile(_ path: String, limit: Int = defaultReadLimit) throws(BGADError) -> [UInt8] {
    try requireValidPath(path)
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw BGADError(.io, "\(path): cannot open (\(String(cString: strerror(errno))))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw BGADError(.io, "\(path): cannot stat (\(String(cString: strerror(errno))))") }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw BGADError(.io, "\(path): is a directory") }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw BGADError(.io, "\(path): is not a regular file") }
    let size = Int(st.st_size)
    guard size <= limit else { throw BGADError(.io, "\(path): \(size) bytes, more than the \(limit) this file may have") }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            throw BGADError(.io, "\(path): read failed (\(String(cString: strerror(errno))))")
        }
        if n == 0 { throw BGADError(.io, "\(path): read \(done) of \(size) bytes (the file shrank)") }
        done += n
    }
    return bytes
}

/// Writes `bytes` to `path` atomically: to a unique temporary file in the same folder
/// (`path.tmp-XXXXXX`, created exclusively, mode 0644), flushed to disk with `fsync`, then
/// renamed over `path`; so readers never see a partial file, and concurrent writers never
/// share a temporary file.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(BGADError) {
    try requireValidPath(path)
    var template = Array("\(path).tmp-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else {
        throw BGADError(.io, "\(path): cannot create (\(String(cString: strerror(errno))))")
    }
    let tmp = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    var written = 0
    var failure: String? = nil
    bytes.withUnsafeBytes { b in
        while written < b.count {
            let n = write(fd, b.baseAddress! + written, b.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                failure = String(cString: strerror(errno)); return
            }
            written += n
        }
    }
    if failure == nil, fchmod(fd, 0o644) != 0 || fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
    if close(fd) != 0, failure == nil { failure = String(cString: strerror(errno)) }
    if let failure {
        unlink(tmp)
        throw BGADError(.io, "\(path): write failed (\(failure))")
    }
    if rename(tmp, path) != 0 {
        let reason = String(cString: strerror(errno))
        unlink(tmp)
        throw BGADError(.io, "\(path): cannot rename temporary file (\(reason))")
    }
}
