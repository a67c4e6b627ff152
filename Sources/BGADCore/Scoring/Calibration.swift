/// Score references and default decisions, fixed at the end of training from the
/// TRAINING normal data and stored in the model (so no score depends on a test set).
///
/// - `references[l] = ref_l` = the largest `ℓ` of level `l` over every position of every
///   training normal image (the authors subtract the test set's maximum instead).
/// - `maxNormality = S_max` = the largest summed normality `Σ` over every pixel of the
///   training normal images' maps at the calibration size; anomaly score `s = S_max − Σ`.
/// - The explicit boundary as a decision rule: with the training normal pixels' `Σ` sorted
///   ascending, `b = Σ_(⌊n·β⌋)` and `pixelThreshold = S_max − b`; a pixel is anomalous iff
///   `s > pixelThreshold` (⇔ `Σ < b`), so at most `⌊n·β⌋` training normal pixels — a
///   false-positive rate ≤ β on the training normals — are flagged. `imageThreshold` is the
///   same rule on the training normal images' image scores `−log(min Σ)` (see `AnomalyMapper`).
public struct Calibration: Equatable, Sendable {
    /// `ref_l` per level.
    public var references: [Float]
    /// `S_max`.
    public var maxNormality: Float
    /// Height of the maps the thresholds were taken on.
    public var height: Int
    /// Width of the maps the thresholds were taken on.
    public var width: Int
    /// The quantile β of the thresholds (the training β).
    public var beta: Double
    /// Default pixel threshold (anomalous iff score > threshold).
    public var pixelThreshold: Float
    /// Default image threshold on the image score `−log(min Σ)` (anomalous iff score > threshold).
    public var imageThreshold: Double
    /// Number of training normal pixels the pixel threshold was taken over.
    public var pixelCount: Int
    /// Number of training normal images the image threshold was taken over.
    public var imageCount: Int

    /// A calibration from its stored values.
    public init(references: [Float], maxNormality: Float, height: Int, width: Int, beta: Double,
                pixelThreshold: Float, imageThreshold: Double, pixelCount: Int, imageCount: Int) {
        self.references = references
        self.maxNormality = maxNormality
        self.height = height
        self.width = width
        self.beta = beta
        self.pixelThreshold = pixelThreshold
        self.imageThreshold = imageThreshold
        self.pixelCount = pixelCount
        self.imageCount = imageCount
    }

    /// Calibrates from the `ℓ` grids of the training normal images.
    ///
    /// - Parameters:
    ///   - ell: per level, `images × gridHeights[l] × gridWidths[l]` values.
    ///   - grids: per level `(height, width)`.
    ///   - images: number of training normal images.
    ///   - height, width: size of the calibration maps.
    ///   - beta: quantile of the default thresholds.
    public static func fit(ell: [[Float]], grids: [(Int, Int)], images: Int, height: Int, width: Int,
                           beta: Double) throws(BGADError) -> Calibration {
        guard images >= 1, height >= 1, width >= 1 else { throw .invalid("calibration needs at least one image and a non-empty map size") }
        var refs: [Float] = []
        for (l, v) in ell.enumerated() {
            guard var m = v.first else { throw .invalid("calibration: level \(l) has no values") }
            guard firstNonFinite(v) == nil else { throw .invalid("calibration: a training log-likelihood of level \(l) is not finite") }
            for x in v { m = max(m, x) }
            refs.append(m)
        }
        let mapper = AnomalyMapper(height: height, width: width)
        let hw = height * width
        var sum = [Float](repeating: 0, count: hw)
        func normalityMap(_ i: Int) {
            for q in 0..<hw { sum[q] = 0 }
            sum.withUnsafeMutableBufferPointer { s in
                for l in 0..<ell.count {
                    let (gh, gw) = grids[l]
                    ell[l].withUnsafeBufferPointer { e in
                        mapper.accumulateNormality(ell: e.baseAddress! + i * gh * gw, gridHeight: gh, gridWidth: gw,
                                                   reference: refs[l], into: s.baseAddress!)
                    }
                }
            }
        }
        // One image's grids side by side, for `imageScore`.
        let sizes = grids.map { $0.0 * $0.1 }
        var imageGrids = [Float](repeating: 0, count: sizes.reduce(0, +))
        func imageScore(image i: Int, sum: [Float]) -> Double {
            var offset = 0
            for l in ell.indices {
                for j in 0..<sizes[l] { imageGrids[offset + j] = ell[l][i * sizes[l] + j] }
                offset += sizes[l]
            }
            return imageGrids.withUnsafeBufferPointer { g in
                var pointers: [UnsafePointer<Float>] = []
                var o = 0
                for n in sizes { pointers.append(g.baseAddress! + o); o += n }
                return sum.withUnsafeBufferPointer { mapper.imageScore(sum: $0.baseAddress!, ell: pointers, grids: grids, references: refs) }
            }
        }
        // Pass 1: S_max, per-image scores, histogram of the top 16 bits of the ordered keys.
        let n = images * hw
        let k = boundaryIndex(count: n, beta: beta)
        var histogram = [Int](repeating: 0, count: 65536)
        var minLog = [Double](repeating: 0, count: images)
        var sMax = -Float.infinity
        for i in 0..<images {
            normalityMap(i)
            for q in 0..<hw {
                let v = sum[q]
                sMax = max(sMax, v)
                histogram[Int(orderedKey(v) >> 16)] += 1
            }
            minLog[i] = -imageScore(image: i, sum: sum)
        }
        var bucket = 0, before = 0
        while before + histogram[bucket] <= k { before += histogram[bucket]; bucket += 1 }
        // Pass 2: the values of the bucket holding rank k; exact selection among them.
        var candidates: [Float] = []
        candidates.reserveCapacity(histogram[bucket])
        for i in 0..<images {
            normalityMap(i)
            for q in 0..<hw where Int(orderedKey(sum[q]) >> 16) == bucket { candidates.append(sum[q]) }
        }
        let bPixel = candidates.withUnsafeMutableBufferPointer { kthSmallest($0, k - before) }
        let bImage = minLog.sorted()[boundaryIndex(count: images, beta: beta)]
        return Calibration(references: refs, maxNormality: sMax, height: height, width: width, beta: beta,
                           pixelThreshold: sMax - bPixel, imageThreshold: -bImage,
                           pixelCount: n, imageCount: images)
    }
}
