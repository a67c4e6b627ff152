/// From per-level log-likelihood grids to an anomaly map (paper Sec. 3.4, "Anomaly
/// scoring"; authors' `convert_to_anomaly_scores`, but with references fixed at training):
///
///     normality_l(h, w) = exp(ℓ_l(h, w) − ref_l)
///     Σ(y, x)           = Σ_l bilinear_align_corners(normality_l)(y, x)
///     s(y, x)           = S_max − Σ(y, x)
///
/// `ref_l` and `S_max` come from the model's calibration, so an image's map never
/// depends on other images.
///
/// The image score is `−log(min over pixels of Σ)`: the same order as the map's maximum
/// `S_max − min Σ`, but it keeps ranking images whose least normal pixel has a normality far
/// below float precision (there `S_max − Σ` rounds to `S_max` and `exp` underflows to 0, so
/// strong defects would tie). Where `Σ` is tiny it is evaluated exactly in the log domain.

#if canImport(Glibc)
import Glibc
#endif

/// Interpolation indices and weights of a 1-D linear resize with `align_corners=True`,
/// computed as PyTorch does: `src = dst · (in − 1) / (out − 1)` (single precision),
/// `i0 = ⌊src⌋`, `i1 = i0 + 1` unless `i0` is the last index, `λ1 = src − i0`.
public struct LinearResizeTable: Sendable {
    /// Lower source index per output index.
    public var lower: [Int]
    /// Upper source index per output index.
    public var upper: [Int]
    /// Weight of the upper source per output index (`1 − weight` for the lower one).
    public var weight: [Float]

    /// The table for resizing `inSize` samples to `outSize` samples.
    public init(inSize: Int, outSize: Int) {
        let scale: Float = outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0
        lower = [Int](repeating: 0, count: outSize)
        upper = lower
        weight = [Float](repeating: 0, count: outSize)
        for d in 0..<outSize {
            let src = scale * Float(d)
            let i0 = min(Int(src), inSize - 1)
            lower[d] = i0
            upper[d] = i0 < inSize - 1 ? i0 + 1 : i0
            weight[d] = min(max(src - Float(i0), 0), 1)
        }
    }
}

/// Builds anomaly maps of a fixed output size from per-level `ℓ` grids; interpolation
/// tables are cached per level grid, so mapping many images allocates nothing.
public final class AnomalyMapper {
    /// Output height.
    public let height: Int
    /// Output width.
    public let width: Int
    private var tables: [Int: (LinearResizeTable, LinearResizeTable)] = [:]
    private var normality: [Float] = []
    private var alongX: [Float] = []  // a grid's rows resized along x (accumulateNormality)

    /// A mapper producing `height × width` maps.
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    /// Below this normality a pixel's `Σ` is re-evaluated in the log domain by `imageScore`:
    /// above it every term that matters is a normal float, so `Σ` is exact to float rounding.
    public static let exactBelow: Float = 1e-30

    private func table(gridHeight: Int, gridWidth: Int) -> (LinearResizeTable, LinearResizeTable) {
        let key = gridHeight &* 1_000_003 &+ gridWidth
        if let t = tables[key] { return t }
        let t = (LinearResizeTable(inSize: gridHeight, outSize: height), LinearResizeTable(inSize: gridWidth, outSize: width))
        tables[key] = t
        return t
    }

    /// The image score `−log(min Σ)` of one image from its normality sum `sum` (`height ×
    /// width`, as built by `accumulateNormality`) and its per-level `ℓ` grids. Pixels whose
    /// `Σ` is below `exactBelow` get `log Σ` exactly (log-sum-exp over every level's four
    /// bilinear terms), so the score stays finite and ordered when `Σ` underflows.
    public func imageScore(sum: UnsafePointer<Float>, ell: [UnsafePointer<Float>], grids: [(Int, Int)],
                           references: [Float]) -> Double {
        let hw = height * width
        // The minimum, 8 lanes at a time (compare-and-select: NaN never wins, as in the
        // scalar loop for the rest).
        var lanes = SIMD8<Float>(repeating: sum[0])
        var q = 0
        while q + 8 <= hw {
            let v = UnsafeRawPointer(sum + q).loadUnaligned(as: SIMD8<Float>.self)
            lanes = lanes.replacing(with: v, where: v .< lanes)
            q += 8
        }
        var lo = sum[0]
        for l in 0..<8 where lanes[l] < lo { lo = lanes[l] }
        while q < hw {
            if sum[q] < lo { lo = sum[q] }
            q += 1
        }
        if lo >= AnomalyMapper.exactBelow { return -log(Double(lo)) }
        let tabs = grids.map { table(gridHeight: $0.0, gridWidth: $0.1) }
        var minLog = Double.infinity
        for q in 0..<hw where sum[q] < AnomalyMapper.exactBelow {
            let y = q / width, x = q % width
            // log Σ = log Σ_(l, corner) w · exp(ℓ − ref), as a running log-sum-exp: `acc` holds
            // Σ exp(t − top) for the largest exponent `top` seen so far.
            var top = -Double.infinity, acc = 0.0
            for l in grids.indices {
                forEachTerm(y, x, tabs[l], grids[l].1, ell[l], references[l]) { t in
                    if t > top { acc = acc * exp(top - t) + 1; top = t } else { acc += exp(t - top) }
                }
            }
            minLog = min(minLog, top + log(acc))
        }
        return -minLog
    }

    /// Calls `body(log w + ℓ − ref)` for the bilinear terms of pixel `(y, x)` with weight > 0.
    @inline(__always)
    private func forEachTerm(_ y: Int, _ x: Int, _ t: (LinearResizeTable, LinearResizeTable), _ gridWidth: Int,
                             _ ell: UnsafePointer<Float>, _ reference: Float, _ body: (Double) -> Void) {
        let (ty, tx) = t
        let b = Double(ty.weight[y]), q = Double(tx.weight[x])
        for corner in 0..<4 {
            let (r, wr) = corner < 2 ? (ty.lower[y], 1 - b) : (ty.upper[y], b)
            let (c, wc) = corner % 2 == 0 ? (tx.lower[x], 1 - q) : (tx.upper[x], q)
            if wr > 0, wc > 0 { body(log(wr * wc) + Double(ell[r * gridWidth + c]) - Double(reference)) }
        }
    }

    /// Adds `bilinear(exp(ℓ − reference))` of one level's `gridHeight × gridWidth` grid to
    /// the normality sum `sum` (`height × width`): `a·(p·v00 + q·v01) + b·(p·v10 + q·v11)`
    /// per pixel, with the bracketed row terms computed once per grid row and output column
    /// (a pass along x over the grid's rows), then the sum along y over whole output rows.
    public func accumulateNormality(
        ell: UnsafePointer<Float>, gridHeight: Int, gridWidth: Int, reference: Float,
        into sum: UnsafeMutablePointer<Float>
    ) {
        let (ty, tx) = table(gridHeight: gridHeight, gridWidth: gridWidth)
        let n = gridHeight * gridWidth, width = self.width
        if normality.count < n { normality = [Float](repeating: 0, count: n) }
        if alongX.count < gridHeight * width { alongX = [Float](repeating: 0, count: gridHeight * width) }
        normality.withUnsafeMutableBufferPointer { vb in
            alongX.withUnsafeMutableBufferPointer { hb in
                let v = vb.baseAddress!, h = hb.baseAddress!
                for i in 0..<n { v[i] = expf(ell[i] - reference) }
                tx.lower.withUnsafeBufferPointer { lower in
                    tx.upper.withUnsafeBufferPointer { upper in
                        tx.weight.withUnsafeBufferPointer { weight in
                            for g in 0..<gridHeight {
                                let r = v + g * gridWidth, out = h + g * width
                                for x in 0..<width {
                                    let q = weight[x], p = 1 - q
                                    out[x] = p * r[lower[x]] + q * r[upper[x]]
                                }
                            }
                        }
                    }
                }
                for y in 0..<height {
                    let h0 = UnsafePointer(h + ty.lower[y] * width), h1 = UnsafePointer(h + ty.upper[y] * width)
                    let b = ty.weight[y], a = 1 - b
                    let out = sum + y * width
                    for x in 0..<width { out[x] += a * h0[x] + b * h1[x] }
                }
            }
        }
    }
}
