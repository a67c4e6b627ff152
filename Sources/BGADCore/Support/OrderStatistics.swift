/// Order statistics shared by training (the explicit boundaries) and scoring (the
/// calibration thresholds).

/// Index of the normal boundary in the ascending order of `count` normal values:
/// `⌊count · β⌋` (the authors' `int(n_normal * pos_beta)`), clamped to `count − 1`.
@inlinable
public func boundaryIndex(count: Int, beta: Double) -> Int {
    precondition(count > 0)
    let k = Int((Double(count) * beta).rounded(.down))
    return min(max(k, 0), count - 1)
}

/// The `k`-th smallest value (0-based) of `values`, found by an in-place quickselect
/// (the order of `values` is changed). Exact, O(n) expected; ties are handled.
public func kthSmallest(_ values: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
    precondition(k >= 0 && k < values.count)
    var lo = 0, hi = values.count - 1
    let v = values.baseAddress!
    while lo < hi {
        // Median of three as pivot; three-way partition keeps runs of ties O(n).
        let mid = lo + (hi - lo) / 2
        let a = v[lo], b = v[mid], c = v[hi]
        let pivot = max(min(a, b), min(max(a, b), c))
        var lt = lo, i = lo, gt = hi
        while i <= gt {
            let x = v[i]
            if x < pivot { v.swapAt(lt, i); lt += 1; i += 1 }
            else if x > pivot { v.swapAt(i, gt); gt -= 1 }
            else { i += 1 }
        }
        if k < lt { hi = lt - 1 } else if k > gt { lo = gt + 1 } else { return pivot }
    }
    return v[lo]
}

private extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}
