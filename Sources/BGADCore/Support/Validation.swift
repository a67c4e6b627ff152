/// Checks shared by every entry point of the core: finiteness and binary labels.

/// Index of the first NaN or ±infinity of `values`, or nil when every value is finite: the
/// engine's one finite-value scan. Blocks of 1024 values are tested branch-free (vectorised)
/// and only a block holding a bad value is searched for its index.
@inlinable
public func firstNonFinite<T: BinaryFloatingPoint>(_ values: UnsafeBufferPointer<T>) -> Int? {
    let n = values.count
    var start = 0
    while start < n {
        let end = min(start + 1024, n)
        var bad: UInt8 = 0
        for i in start..<end { bad |= values[i].isFinite ? 0 : 1 }
        if bad != 0 {
            for i in start..<end where !values[i].isFinite { return i }
        }
        start = end
    }
    return nil
}

/// `firstNonFinite` of the `count` floats at `x`.
@inlinable
public func firstNonFinite(_ x: UnsafePointer<Float>, count: Int) -> Int? {
    firstNonFinite(UnsafeBufferPointer(start: x, count: count))
}

/// `firstNonFinite` of a collection (scanned in place when its storage is contiguous).
@inlinable
public func firstNonFinite<C: Collection>(_ values: C) -> Int? where C.Element: BinaryFloatingPoint {
    if let found = values.withContiguousStorageIfAvailable({ firstNonFinite($0) }) { return found }
    return Array(values).withUnsafeBufferPointer { firstNonFinite($0) }
}

/// Throws unless every value of `values` is finite; the message names `name`, the index of
/// the first bad value and what it is.
@inlinable
public func requireFinite<C: Collection>(_ values: C, _ name: String) throws(BGADError)
where C.Element: BinaryFloatingPoint {
    guard let i = firstNonFinite(values) else { return }
    let v = values[values.index(values.startIndex, offsetBy: i)]
    throw .invalid("\(name): element \(i) is \(v.isNaN ? "NaN" : "infinite")")
}

/// Throws unless every value of `labels` is exactly 0 or 1.
@inlinable
public func requireBinary<C: Collection>(_ labels: C, _ name: String) throws(BGADError)
where C.Element: BinaryFloatingPoint {
    var i = 0
    for v in labels {
        if v != 0 && v != 1 {
            throw .invalid("\(name): element \(i) is \(v); labels must be 0 (normal) or 1 (anomalous)")
        }
        i += 1
    }
}
