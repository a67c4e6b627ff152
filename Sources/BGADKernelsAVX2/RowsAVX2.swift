/// Row passes of the backbone's 1×1 convolutions, built for AVX2 (see `Vectors.swift` for
/// when they may run).

/// `out[r·c + ch] = bias[ch] (+ skip[r·c + ch])` for `rows` rows of `c` floats: the
/// starting value a 1×1 convolution's `sgemm` then accumulates into.
public func fillRowsAVX2(
    _ out: UnsafeMutablePointer<Float>, rows: Int, channels c: Int, bias: UnsafePointer<Float>,
    skip: UnsafePointer<Float>?
) {
    let vectorEnd = c & ~7
    for r in 0..<rows {
        let row = out + r * c
        var ch = 0
        if let skip {
            let s = skip + r * c
            while ch < vectorEnd { st(ld(bias + ch) + ld(s + ch), row + ch); ch += 8 }
            while ch < c { row[ch] = bias[ch] + s[ch]; ch += 1 }
        } else {
            while ch < vectorEnd { st(ld(bias + ch), row + ch); ch += 8 }
            while ch < c { row[ch] = bias[ch]; ch += 1 }
        }
    }
}

/// `x[i] = min(max(x[i], 0), 6)` for `count` floats (NaN becomes 0).
public func relu6InPlaceAVX2(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 32 <= count {
        for u in 0..<4 { st(relu6(ld(x + i + 8 * u)), x + i + 8 * u) }
        i += 32
    }
    while i + 8 <= count {
        st(relu6(ld(x + i)), x + i)
        i += 8
    }
    while i < count {
        x[i] = x[i] > 0 ? min(x[i], 6) : 0  // NaN → 0, as the vector lanes
        i += 1
    }
}
