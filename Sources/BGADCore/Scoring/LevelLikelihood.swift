/// Per-position log-likelihood grids of one level, image by image.
///
/// Each image is evaluated on its own (its `H·W` vectors in one flow call), so an
/// image's `ℓ` — hence its anomaly map — is the same whether it is scored alone or
/// among others.
public final class LevelLikelihoodEvaluator {
    private var rows: [Float] = []
    private var condIndex: [Int32] = []
    private var conditions: [Int: [Float]] = [:]

    /// An evaluator with empty workspaces (they grow to the largest grid seen).
    public init() {}

    /// Writes `ℓ = log p(x) / C` of every position of image `image` of `maps` into `ell`
    /// (`H · W` floats ordered `(h, w)`).
    public func logLikelihood(
        flow: ConditionalFlow, maps: FeatureMaps, image: Int, into ell: UnsafeMutablePointer<Float>
    ) throws(BGADError) {
        let p = maps.positions, c = maps.channels
        guard c == flow.dim else { throw .invalid("features have \(c) channels, the flow expects \(flow.dim)") }
        let key = maps.height &* 1_000_003 &+ maps.width
        if conditions[key] == nil {
            conditions[key] = positionalEncoding(height: maps.height, width: maps.width, dim: flow.condDim)
        }
        if rows.count < p * c { rows = [Float](repeating: 0, count: p * c) }
        if condIndex.count < p { condIndex = (0..<Int32(p)).map { $0 } }
        rows.withUnsafeMutableBufferPointer { maps.transposeImage(image, into: $0.baseAddress!) }
        let cond = conditions[key]!
        try rows.withUnsafeBufferPointer { r throws(BGADError) in
            try cond.withUnsafeBufferPointer { cb throws(BGADError) in
                try condIndex.withUnsafeBufferPointer { ib throws(BGADError) in
                    try flow.logLikelihood(x: r.baseAddress!, count: p, condTable: cb.baseAddress!, condRows: p,
                                           condIndex: ib.baseAddress!, ell: ell)
                }
            }
        }
    }
}
