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
///
/// `header`, when given, sees the file's first `headerSize` bytes (fewer when the file is
/// shorter) and its real length before anything else is read or allocated; it throws
/// (`.format`) when the header is foreign or declares another length, so a file with a wrong
/// magic or a lying size costs one small read. Memory for the whole file is then probed
/// first (`requireAllocatable`): when it is refused the error is `.outOfMemory`, never a trap.
public func readFile(_ path: String, limit: Int = defaultReadLimit, headerSize: Int = 0,
                     header: ((_ head: [UInt8], _ fileSize: Int) throws(BGADError) -> Void)? = nil) throws(BGADError) -> [UInt8] {
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
    if let header {
        let head = try readExactly(fd, path, offset: 0, count: min(max(headerSize, 0), size))
        do { try header(head, size) } catch { throw BGADError(error.kind, "\(path): \(error.message)") }
    }
    guard size <= limit else { throw BGADError(.io, "\(path): \(size) bytes, more than the \(limit) this file may have") }
    return try readExactly(fd, path, offset: 0, count: size)
}

/// `count` bytes of `fd` from `offset` (`pread`), in memory probed first (`requireAllocatable`) so that
/// a refused allocation is `.outOfMemory` rather than a trap of the Swift runtime.
private func readExactly(_ fd: Int32, _ path: String, offset: Int, count size: Int) throws(BGADError) -> [UInt8] {
    try requireAllocatable(size, "\(path): \(size) bytes")
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(offset + done)) }
        if n < 0 {
            if errno == EINTR || errno == EAGAIN { continue }
            throw BGADError(.io, "\(path): read failed (\(String(cString: strerror(errno))))")
        }
        if n == 0 { throw BGADError(.io, "\(path): read \(done) of \(size) bytes (the file shrank)") }
        done += n
    }
    return bytes
}

/// Throws `.outOfMemory` (naming `what`) unless the system grants `bytes` bytes now (blocks of
/// 1 MiB and more): called before a large Swift array is built, whose own allocation failure
/// would abort the process.
public func requireAllocatable(_ bytes: Int, _ what: @autoclosure () -> String) throws(BGADError) {
    guard bytes >= 1 << 20 else { return }
    // `mmap`, as `malloc` does for blocks this large (and, unlike a malloc/free pair, not
    // removed by the optimiser): refused under an address-space limit or past overcommit.
    let probe = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let probe, probe != UnsafeMutableRawPointer(bitPattern: -1) else {
        throw BGADError(.outOfMemory, "\(what()): cannot allocate the memory")
    }
    munmap(probe, bytes)
}

/// Writes `bytes` to `path` atomically: to a temporary file in the same folder, named
/// `<name>.tmp-XXXXXX` (six random characters, created exclusively by `mkstemp`, so a planted
/// symlink is never followed and concurrent writers never share one), flushed to disk with
/// `fsync`, then renamed over `path`; so readers never see a partial file.
///
/// Mode: a file that already exists keeps its permission bits; a new file gets
/// `0666 & ~umask`, like any file a program creates.
///
/// A writer killed between `mkstemp` and `rename` leaves its temporary file behind; the next
/// successful write to the same `path` removes those of `path` that are older than
/// `staleTemporaryAge` seconds (a live writer's file is never that old) and belong to the
/// same user. Other names in the folder are never touched.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws(BGADError) {
    try requireValidPath(path)
    var template = Array("\(path)\(temporarySuffix)XXXXXX".utf8CString)
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
    var existing = stat()
    let mode: mode_t = stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG
        ? existing.st_mode & 0o7777 : 0o666 & ~currentUmask()
    if failure == nil, fchmod(fd, mode) != 0 || fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
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
    removeStaleTemporaries(of: path)
}

/// What `writeFileAtomically` appends to a path to name its temporary file (then six random
/// characters).
public let temporarySuffix = ".tmp-"

/// Age in seconds beyond which a temporary file of `writeFileAtomically` is left over from a
/// killed writer (one hour; writing a file takes seconds).
public let staleTemporaryAge = 3600

/// The process's file-creation mask, read from `/proc/self/status` (no window in which another
/// thread would create files with a changed mask); where that is missing, `umask` is set and
/// restored at once.
func currentUmask() -> mode_t {
    // /proc files report a size of 0: read to the end (the file is a few kB).
    var text: [UInt8] = []
    let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
    if fd >= 0 {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while text.count < 1 << 16 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, 4096) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            text += chunk[0..<n]
        }
        close(fd)
    }
    if let line = String(decoding: text, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
       let value = mode_t(line.dropFirst(6).drop(while: { $0 == " " || $0 == "\t" }), radix: 8) {
        return value
    }
    let mask = umask(0o022)
    umask(mask)
    return mask
}

/// Removes the temporary files `<path>.tmp-XXXXXX` older than `staleTemporaryAge` and owned
/// by this user (regular files only; a symlink of that name is left alone). Best effort:
/// failures are ignored.
func removeStaleTemporaries(of path: String) {
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let prefix = Array((slash.map { String(path[path.index(after: $0)...]) } ?? path).utf8) + Array(temporarySuffix.utf8)
    guard let dir = opendir(folder) else { return }
    defer { closedir(dir) }
    let now = time(nil)
    while let entry = readdir(dir) {
        let name = directoryEntryName(entry)
        guard name.count == prefix.count + 6, name.starts(with: prefix) else { continue }
        let full = (folder == "/" ? "" : folder) + "/" + String(decoding: name, as: UTF8.self)
        var st = stat()
        guard lstat(full, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == getuid(),
              Int(now - st.st_mtim.tv_sec) > staleTemporaryAge else { continue }
        unlink(full)
    }
}

/// The name of a `readdir` entry, read in place: the record may be shorter than
/// `MemoryLayout<dirent>.size`, so `entry.pointee.d_name` (a copy of the whole 256-byte
/// field) would read past it.
func directoryEntryName(_ entry: UnsafeMutablePointer<dirent>) -> [UInt8] {
    let start = (UnsafeRawPointer(entry) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(to: UInt8.self)
    return Array(UnsafeBufferPointer(start: start, count: strlen(UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self))))
}
