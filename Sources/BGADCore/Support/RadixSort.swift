/// Order-preserving integer keys for floats, and LSD radix sorts on them.
///
/// The metrics sort millions of pixel scores; a comparison sort would dominate their
/// cost. Mapping a `Float` to a `UInt32` whose unsigned order equals the float order
/// turns the sort into three counting passes of 11 bits each.

/// Maps a finite `Float` to a `UInt32` such that `a < b ⇔ key(a) < key(b)` and
/// `a == b ⇔ key(a) == key(b)` (so `-0.0` and `+0.0` share one key, as they compare equal).
@inlinable @inline(__always)
public func orderedKey(_ value: Float) -> UInt32 {
    // `+ 0` turns -0.0 into +0.0 (IEEE), so both zeros share a key; branch-free so
    // that the loops building keys vectorise.
    let bits = (value + 0).bitPattern
    let negative = UInt32(bitPattern: Int32(bitPattern: bits) >> 31)  // all ones if negative
    return bits ^ (negative | 0x8000_0000)
}

/// Inverse of `orderedKey`.
@inlinable @inline(__always)
public func floatFromOrderedKey(_ key: UInt32) -> Float {
    let bits = (key & 0x8000_0000) != 0 ? key & 0x7FFF_FFFF : ~key
    return Float(bitPattern: bits)
}

/// Sorts `keys` ascending in place (stable LSD radix sort, 3 passes of 11 bits).
/// `scratch` must hold at least `keys.count` elements; its contents are overwritten.
public func radixSort(_ keys: UnsafeMutableBufferPointer<UInt32>, scratch: UnsafeMutableBufferPointer<UInt32>) {
    lsdRadixSort(keys, scratch: scratch) { $0 }
}

/// Sorts `items` ascending by their upper 32 bits in place (stable LSD radix sort);
/// the lower 32 bits are a payload carried along. `scratch` must hold `items.count`.
public func radixSortByHighWord(_ items: UnsafeMutableBufferPointer<UInt64>, scratch: UnsafeMutableBufferPointer<UInt64>) {
    lsdRadixSort(items, scratch: scratch) { UInt32(truncatingIfNeeded: $0 >> 32) }
}

/// The stable LSD radix sort of `items` by the 32-bit `key` of each: three counting passes
/// of 11 bits, ping-ponging with `scratch` (at least `items.count` elements, overwritten).
@inline(__always)
private func lsdRadixSort<T>(_ items: UnsafeMutableBufferPointer<T>, scratch: UnsafeMutableBufferPointer<T>,
                             key: (T) -> UInt32) {
    let n = items.count
    if n < 2 { return }
    precondition(scratch.count >= n)
    var src = items.baseAddress!
    var dst = scratch.baseAddress!
    var counts = [Int](repeating: 0, count: 3 * 2048)
    counts.withUnsafeMutableBufferPointer { c in
        for i in 0..<n {
            let k = key(src[i])
            c[Int(k & 0x7FF)] += 1
            c[2048 + Int((k >> 11) & 0x7FF)] += 1
            c[4096 + Int(k >> 22)] += 1
        }
        var inScratch = false
        for pass in 0..<3 {
            let base = pass * 2048
            let shift = UInt32(pass * 11)
            // A pass whose digit is the same for every key changes nothing: skip it.
            var distinctDigits = 0
            var total = 0
            for d in 0..<2048 {
                let cnt = c[base + d]
                if cnt != 0 { distinctDigits += 1 }
                c[base + d] = total
                total += cnt
            }
            if distinctDigits == 1 { continue }
            for i in 0..<n {
                let v = src[i]
                let d = base + Int((key(v) >> shift) & 0x7FF)
                dst[c[d]] = v
                c[d] += 1
            }
            swap(&src, &dst)
            inScratch.toggle()
        }
        if inScratch {
            items.baseAddress!.update(from: scratch.baseAddress!, count: n)
        }
    }
}
