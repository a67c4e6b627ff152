/// Little-endian binary encoding: the writer and the bounds-checked reader every file format
/// of the engine (model, detector and weight files) is written and parsed with.

/// Appends little-endian integers, floats and length-prefixed strings to `bytes`.
struct ByteWriter {
    /// The bytes written so far.
    var bytes: [UInt8] = []

    /// Appends one byte.
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    /// Appends 4 bytes, least significant first.
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    /// Appends 8 bytes, least significant first.
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    /// Appends the IEEE 754 bits of `v` (`u32`).
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    /// Appends the IEEE 754 bits of `v` (`u64`).
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    /// Appends every value as `f32` (one copy on little-endian machines).
    mutating func floats(_ values: [Float]) {
        #if _endian(little)
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for v in values { f32(v) }
        #endif
    }
    /// Appends the UTF-8 byte count (`u32`), then the bytes.
    mutating func string(_ s: String) { let u = Array(s.utf8); u32(UInt32(u.count)); bytes.append(contentsOf: u) }
}

/// Reads little-endian fields from `bytes` at `position`, which each read advances. Every
/// read is checked against the bytes left first and fails with `.format`, naming `context`.
struct ByteReader {
    /// The bytes read.
    let bytes: [UInt8]
    /// Offset of the next read.
    var position: Int
    /// What the bytes are, for messages ("model file", "detector file").
    var context = "model file"

    private mutating func take(_ n: Int) throws(BGADError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else {
            throw BGADError(.format, "\(context) is truncated or corrupt: a field runs past the end")
        }
        defer { position += n }
        return bytes[position..<(position + n)]
    }
    /// One byte.
    mutating func u8() throws(BGADError) -> UInt8 { try take(1).first! }
    /// 4 bytes, least significant first.
    mutating func u32() throws(BGADError) -> UInt32 {
        var v: UInt32 = 0
        for (i, b) in try take(4).enumerated() { v |= UInt32(b) << (8 * i) }
        return v
    }
    /// 8 bytes, least significant first.
    mutating func u64() throws(BGADError) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * i) }
        return v
    }
    /// A float from its IEEE 754 bits (`u32`).
    mutating func f32() throws(BGADError) -> Float { Float(bitPattern: try u32()) }
    /// A double from its IEEE 754 bits (`u64`).
    mutating func f64() throws(BGADError) -> Double { Double(bitPattern: try u64()) }
    /// A `u32` count, refused (naming `what`) above `max`.
    mutating func count(max: Int, _ what: String) throws(BGADError) -> Int {
        let v = try u32()
        guard v <= UInt32(max) else { throw BGADError(.format, "\(context): \(what) \(v) is out of range") }
        return Int(v)
    }
    /// A string written by `ByteWriter.string` (at most 4096 bytes; invalid UTF-8 repaired).
    mutating func string() throws(BGADError) -> String {
        let n = try count(max: 4096, "string length")
        return String(decoding: try take(n), as: UTF8.self)
    }
    /// Moves past `n` bytes, checked against the bytes left.
    mutating func skip(_ n: Int, _ what: String) throws(BGADError) {
        guard n >= 0, n <= bytes.count - position else {
            throw BGADError(.format, "\(context) is truncated or corrupt: \(what) runs past the end")
        }
        position += n
    }
    /// The next `n` raw bytes (checked against the bytes left before copying).
    mutating func raw(_ n: Int) throws(BGADError) -> [UInt8] { Array(try take(n)) }
    /// The next `n` `f32` values (checked against the bytes left before allocating; one copy
    /// on little-endian machines).
    mutating func floats(_ n: Int) throws(BGADError) -> [Float] {
        guard n >= 0, n <= (bytes.count - position) / 4 else {
            throw BGADError(.format, "\(context) is truncated or corrupt: a tensor runs past the end")
        }
        var out = [Float](repeating: 0, count: n)
        #if _endian(little)
        let start = position
        out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + 4 * n)])) }
        }
        position += 4 * n
        #else
        for i in 0..<n { out[i] = try f32() }
        #endif
        return out
    }
}
