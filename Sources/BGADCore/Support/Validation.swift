/// Checks shared by every entry point of the core: finiteness and binary labels.

/// Throws unless every value of `values` is finite; the message names `name` and the index.
@inlinable
public func requireFinite<C: Collection>(_ values: C, _ name: String) throws(BGADError)
where C.Element: BinaryFloatingPoint {
    var i = 0
    for v in values {
        if !v.isFinite {
            throw .invalid("\(name): element \(i) is \(v.isNaN ? "NaN" : "infinite")")
        }
        i += 1
    }
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

/// Throws unless every `Float` of `values` is finite. Branch-free scan first (vectorised),
/// then a second pass only to name the first bad element.
public func requireFinite(_ values: UnsafeBufferPointer<Float>, _ name: String) throws(BGADError) {
    var exponentAllOnes: UInt32 = 0
    for v in values {
        let e = v.bitPattern & 0x7F80_0000
        exponentAllOnes |= e == 0x7F80_0000 ? 1 : 0
    }
    if exponentAllOnes == 0 { return }
    for (i, v) in values.enumerated() where !v.isFinite {
        throw .invalid("\(name): element \(i) is \(v.isNaN ? "NaN" : "infinite")")
    }
}
