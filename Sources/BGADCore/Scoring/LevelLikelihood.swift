/// Per-position log-likelihood grids of one level, image by image.
///
/// Each image is evaluated on its own (its `H·W` vectors in one flow call), so an
/// image's `ℓ` — hence its anomaly map — is the same whether it is scored alone or
/// among others.
public final class LevelLikelihoodEvaluator {
    private var rows: [Float] = []

    /// An evaluator with empty workspaces (they grow to the largest grid seen).
    public init() {}

    /// Writes `ℓ = log p(x) / C` of every position of image `image` of `maps` into `ell`
    /// (`H · W` floats ordered `(h, w)`).
    public func logLikelihood(
        flow: ConditionalFlow, maps: FeatureMaps, image: Int, into ell: UnsafeMutablePointer<Float>
    ) throws(BGADError) {
        let p = maps.positions, c = maps.channels
        guard c == flow.dim else { throw .invalid("features have \(c) channels, the flow expects \(flow.dim)") }
        if rows.count < p * c { rows = [Float](repeating: 0, count: p * c) }
        try rows.withUnsafeMutableBufferPointer { r throws(BGADError) in
            maps.transposeImage(image, into: r.baseAddress!)
            try logLikelihood(flow: flow, rows: r.baseAddress!, height: maps.height, width: maps.width, into: ell)
        }
    }

    /// As `logLikelihood(flow:maps:image:into:)` on an image's vectors already laid out as
    /// rows (`H · W × C`, ordered `(h, w)`), e.g. a `RowStore`'s.
    public func logLikelihood(
        flow: ConditionalFlow, rows x: UnsafePointer<Float>, height: Int, width: Int, into ell: UnsafeMutablePointer<Float>
    ) throws(BGADError) {
        try flow.logLikelihood(x: x, gridHeight: height, gridWidth: width, ell: ell)
    }
}
