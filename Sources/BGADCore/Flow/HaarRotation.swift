/// A Haar-distributed random rotation (special orthogonal matrix, det = +1).
///
/// Method: `Q` of the QR decomposition of a matrix of i.i.d. standard normals, with `R`'s
/// diagonal made positive (Gram–Schmidt gives exactly that `Q`), is Haar-distributed on
/// O(n) (Mezzadri 2007). When det `Q` = −1, negating the first column maps O(n)⁻ onto
/// SO(n) and keeps the distribution uniform there. Computed in `Double`, returned as
/// `Float`, row-major `n × n`.
public func haarRotation(dim n: Int, random: inout SeededRandom) -> [Float] {
    guard n > 0 else { return [] }
    // Columns of a stored column-major: col j at a[j*n ..< (j+1)*n].
    var a = [Double](repeating: 0, count: n * n)
    for i in 0..<(n * n) { a[i] = random.gaussian() }
    // Modified Gram–Schmidt with one re-orthogonalisation pass (accurate to ~1e-15).
    for j in 0..<n {
        for _ in 0..<2 {
            for p in 0..<j {
                var dot = 0.0
                for i in 0..<n { dot += a[p * n + i] * a[j * n + i] }
                for i in 0..<n { a[j * n + i] -= dot * a[p * n + i] }
            }
        }
        var norm = 0.0
        for i in 0..<n { norm += a[j * n + i] * a[j * n + i] }
        norm = norm.squareRoot()
        for i in 0..<n { a[j * n + i] /= norm }
    }
    if determinantSign(columnMajor: a, n: n) < 0 {
        for i in 0..<n { a[i] = -a[i] }
    }
    var q = [Float](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { q[i * n + j] = Float(a[j * n + i]) } }
    return q
}

/// Sign (+1 / −1, 0 if singular) of the determinant of an `n × n` matrix (LU, partial pivoting).
func determinantSign(columnMajor m: [Double], n: Int) -> Int {
    var a = m
    var sign = 1
    for k in 0..<n {
        var piv = k
        var best = abs(a[k * n + k])
        for i in (k + 1)..<max(n, k + 1) where abs(a[k * n + i]) > best { best = abs(a[k * n + i]); piv = i }
        if best == 0 { return 0 }
        if piv != k {
            for j in 0..<n { a.swapAt(j * n + k, j * n + piv) }
            sign = -sign
        }
        let d = a[k * n + k]
        if d < 0 { sign = -sign }
        for i in (k + 1)..<max(n, k + 1) {
            let f = a[k * n + i] / d
            if f != 0 { for j in (k + 1)..<n { a[j * n + i] -= f * a[j * n + k] } }
        }
    }
    return sign
}
