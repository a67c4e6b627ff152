import BGADCore

/// C entry points of `bgad_testing.h`: exported for the tests, not part of the stable API
/// (`bgad.h` has the general forms; the loss pieces are checked against independent
/// implementations). Unstable: they may change in any release.

// MARK: - Superseded forms

/// Loads a weight file of any variant: `bgad_backbone_load_variant(path, -1, out)`.
@_cdecl("bgad_backbone_load")
public func bgad_backbone_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    bgad_backbone_load_variant(path, -1, out)
}

/// EfficientNet-Lite0's feature shape: `bgad_backbone_variant_feature_shape` with variant 0.
@_cdecl("bgad_backbone_feature_shape")
public func bgad_backbone_feature_shape(
    _ inputHeight: Int64, _ inputWidth: Int64, _ stride: Int32,
    _ channels: UnsafeMutablePointer<Int64>?, _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?
) -> Int32 {
    bgad_backbone_variant_feature_shape(0, inputHeight, inputWidth, stride, channels, height, width)
}

// MARK: - Pieces of the BGAD loss, exposed for verification

/// The explicit boundaries b_n, b_a of one chunk (`Training/`'s `explicitBoundaries`).
@_cdecl("bgad_explicit_boundaries")
public func bgad_explicit_boundaries(
    _ ell: UnsafePointer<Float>?, _ labels: UnsafePointer<UInt8>?, _ n: Int64,
    _ beta: Double, _ tau: Double, _ alphaN: Double,
    _ normalBoundary: UnsafeMutablePointer<Float>?, _ abnormalBoundary: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let count = try requireSize(n, "n")
        let e = UnsafeBufferPointer(start: try require(ell, "ell"), count: count)
        let l = UnsafeBufferPointer(start: try require(labels, "labels"), count: count)
        let bn = try require(normalBoundary, "b_n"), ba = try require(abnormalBoundary, "b_a")
        try requireFinite(e, "ell")
        var p = BoundaryLossParameters()
        p.beta = beta; p.tau = tau; p.normalizer = alphaN
        try p.validate()
        var scratch = [Float](repeating: 0, count: count)
        let b = scratch.withUnsafeMutableBufferPointer { explicitBoundaries(ell: e, labels: l, parameters: p, scratch: $0) }
        guard let b else { throw .invalid("labels: no normal vector (label 0), the normal boundary is undefined") }
        bn.pointee = b.normal
        ba.pointee = b.abnormal
    }
}

/// The boundary-guided loss and its gradient for fixed boundaries and weights.
@_cdecl("bgad_boundary_guided_loss")
public func bgad_boundary_guided_loss(
    _ ell: UnsafePointer<Float>?, _ labels: UnsafePointer<UInt8>?, _ n: Int64,
    _ useBoundaries: Int32, _ normalBoundary: Float, _ abnormalBoundary: Float,
    _ normalWeights: UnsafePointer<Float>?, _ abnormalWeights: UnsafePointer<Float>?, _ semiPush: Int32,
    _ alphaN: Double, _ lambda: Double, _ parts: UnsafeMutablePointer<Double>?, _ gradient: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let count = try requireSize(n, "n")
        let e = UnsafeBufferPointer(start: try require(ell, "ell"), count: count)
        let l = UnsafeBufferPointer(start: try require(labels, "labels"), count: count)
        try requireFinite(e, "ell")
        guard alphaN.isFinite, alphaN > 0 else { throw .invalid("alpha_n must be > 0, got \(alphaN)") }
        guard lambda.isFinite, lambda >= 0 else { throw .invalid("lambda must be ≥ 0, got \(lambda)") }
        let out = try require(parts, "parts"), g = try require(gradient, "gradient")
        let b: ExplicitBoundaries? = useBoundaries != 0 ? ExplicitBoundaries(normal: normalBoundary, abnormal: abnormalBoundary) : nil
        let r = boundaryGuidedLoss(
            ell: e, labels: l, boundaries: b,
            normalWeights: normalWeights.map { UnsafeBufferPointer(start: $0, count: count) },
            abnormalWeights: abnormalWeights.map { UnsafeBufferPointer(start: $0, count: count) },
            semiPush: semiPush != 0, normalizer: alphaN, lambda: lambda,
            gradient: UnsafeMutableBufferPointer(start: g, count: count))
        out[0] = r.total; out[1] = r.maximumLikelihood; out[2] = r.semiPull; out[3] = r.semiPush
    }
}

/// The asymmetric focal weights of n log-likelihoods.
@_cdecl("bgad_focal_weights")
public func bgad_focal_weights(_ ell: UnsafePointer<Float>?, _ n: Int64, _ normal: UnsafeMutablePointer<Float>?,
                               _ abnormal: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let count = try requireSize(n, "n")
        let e = try require(ell, "ell"), nw = try require(normal, "normal"), aw = try require(abnormal, "abnormal")
        try requireFinite(UnsafeBufferPointer(start: e, count: count), "ell")
        for i in 0..<count { nw[i] = normalFocalWeight(e[i]); aw[i] = abnormalFocalWeight(e[i]) }
    }
}
