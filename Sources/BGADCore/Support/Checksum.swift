/// CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320), as zlib's `crc32` and Python's
/// `zlib.crc32`: the checksum of the model, detector and weight files.

/// The CRC-32 of `data`.
/// Four bytes per step through four tables ("slicing by 4").
public func crc32(_ data: UnsafeBufferPointer<UInt8>) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    crc32Tables.withUnsafeBufferPointer { t in
        var i = 0
        let n = data.count
        while i + 4 <= n {
            c ^= UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
            c = t[768 + Int(c & 0xFF)] ^ t[512 + Int((c >> 8) & 0xFF)] ^ t[256 + Int((c >> 16) & 0xFF)] ^ t[Int(c >> 24)]
            i += 4
        }
        while i < n {
            c = t[Int((c ^ UInt32(data[i])) & 0xFF)] ^ (c >> 8)
            i += 1
        }
    }
    return c ^ 0xFFFF_FFFF
}

/// The CRC-32 of `bytes`.
public func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBufferPointer { crc32($0) }
}

/// The CRC-32 of a slice of bytes.
public func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    bytes.withUnsafeBufferPointer { crc32($0) }
}

/// Table k (k = 0…3) at offset 256·k: the CRC of a byte followed by k zero bytes.
private let crc32Tables: [UInt32] = {
    var t = [UInt32](repeating: 0, count: 1024)
    for n in 0..<256 {
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        t[n] = c
    }
    for k in 1..<4 {
        for n in 0..<256 {
            let prev = t[256 * (k - 1) + n]
            t[256 * k + n] = t[Int(prev & 0xFF)] ^ (prev >> 8)
        }
    }
    return t
}()
