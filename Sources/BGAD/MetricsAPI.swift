import BGADCore

/// C entry points of the evaluation metrics (see `bgad.h`, "Metrics").

@_cdecl("bgad_roc_auc")
public func bgad_roc_auc(_ labels: UnsafePointer<Double>?, _ scores: UnsafePointer<Double>?, _ n: Int64, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (l, s, o) = try rankInputs(labels, scores, n, out)
        o.pointee = try Metrics.rocAUC(labels: l, scores: s)
    }
}

@_cdecl("bgad_average_precision")
public func bgad_average_precision(_ labels: UnsafePointer<Double>?, _ scores: UnsafePointer<Double>?, _ n: Int64, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (l, s, o) = try rankInputs(labels, scores, n, out)
        o.pointee = try Metrics.averagePrecision(labels: l, scores: s)
    }
}

@_cdecl("bgad_f1_optimal_threshold")
public func bgad_f1_optimal_threshold(_ labels: UnsafePointer<Double>?, _ scores: UnsafePointer<Double>?, _ n: Int64, _ threshold: UnsafeMutablePointer<Double>?, _ f1: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (l, s, t) = try rankInputs(labels, scores, n, threshold)
        let f = try require(f1, "f1")
        let r = try Metrics.f1OptimalThreshold(labels: l, scores: s)
        t.pointee = r.threshold
        f.pointee = r.f1
    }
}

@_cdecl("bgad_pixel_roc_auc")
public func bgad_pixel_roc_auc(_ masks: UnsafePointer<UInt8>?, _ maps: UnsafePointer<Float>?, _ count: Int64, _ height: Int64, _ width: Int64, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (m, s, dims, o) = try pixelInputs(masks, maps, count, height, width, out)
        o.pointee = try Metrics.pixelROCAUC(masks: m, maps: s, count: dims.0, height: dims.1, width: dims.2)
    }
}

@_cdecl("bgad_au_pro")
public func bgad_au_pro(_ masks: UnsafePointer<UInt8>?, _ maps: UnsafePointer<Float>?, _ count: Int64, _ height: Int64, _ width: Int64, _ fprLimit: Double, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (m, s, dims, o) = try pixelInputs(masks, maps, count, height, width, out)
        o.pointee = try Metrics.auPRO(masks: m, maps: s, count: dims.0, height: dims.1, width: dims.2, fprLimit: fprLimit)
    }
}

private func rankInputs(
    _ labels: UnsafePointer<Double>?, _ scores: UnsafePointer<Double>?, _ n: Int64, _ out: UnsafeMutablePointer<Double>?
) throws(BGADError) -> (UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>, UnsafeMutablePointer<Double>) {
    let count = try requireSize(n, "n")
    let o = try require(out, "out")
    if count == 0 { throw .invalid("empty input: no scores given") }
    let l = try require(labels, "labels"), s = try require(scores, "scores")
    return (UnsafeBufferPointer(start: l, count: count), UnsafeBufferPointer(start: s, count: count), o)
}

private func pixelInputs(
    _ masks: UnsafePointer<UInt8>?, _ maps: UnsafePointer<Float>?, _ count: Int64, _ height: Int64, _ width: Int64,
    _ out: UnsafeMutablePointer<Double>?
) throws(BGADError) -> (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<Float>, (Int, Int, Int), UnsafeMutablePointer<Double>) {
    let n = try requireSize(count, "count"), h = try requireSize(height, "height"), w = try requireSize(width, "width")
    let o = try require(out, "out")
    let total = try checkedProduct([n, h, w], "maps")
    if total == 0 { throw .invalid("empty input: \(n) maps of \(h)×\(w)") }
    let m = try require(masks, "masks"), s = try require(maps, "maps")
    return (UnsafeBufferPointer(start: m, count: total), UnsafeBufferPointer(start: s, count: total), (n, h, w), o)
}
