import BGADCore

/// C entry points of the BGAD model on feature maps and of its losses (see `bgad.h`,
/// "Model"). A handle is a retained `BGADModel` (`Handles.swift`); a model is not thread-safe.

/// Progress callback: (step, total steps, loss, user data) → non-zero to cancel.
public typealias BGADProgressCallback = @convention(c) (Int64, Int64, Double, UnsafeMutableRawPointer?) -> Int32

private func model(_ handle: OpaquePointer?) throws(BGADError) -> BGADModel {
    try object(handle, BGADModel.self, "model")
}

private func string(_ p: UnsafePointer<CChar>?, _ name: String) throws(BGADError) -> String {
    guard let p else { throw .invalid("\(name) is NULL") }
    return String(cString: p)
}

/// Wraps per-level pointers and grid sizes as `FeatureMaps`, checking every size.
private func featureMaps(
    _ model: BGADModel, _ data: UnsafePointer<UnsafePointer<Float>?>?, _ count: Int64,
    _ heights: UnsafePointer<Int64>?, _ widths: UnsafePointer<Int64>?, _ name: String
) throws(BGADError) -> [FeatureMaps] {
    let n = try requireSize(count, "\(name) count")
    let d = try require(data, name)
    let hs = try require(heights, "heights"), ws = try require(widths, "widths")
    var out: [FeatureMaps] = []
    for (l, c) in model.channels.enumerated() {
        let h = try requireSize(hs[l], "height of level \(l)"), w = try requireSize(ws[l], "width of level \(l)")
        guard h >= 1, w >= 1 else { throw .invalid("level \(l): grid must be at least 1×1, got \(h)×\(w)") }
        _ = try checkedProduct([n, c, h, w], "\(name), level \(l)")
        guard let p = d[l] else { throw .invalid("\(name): level \(l) is NULL") }
        out.append(FeatureMaps(data: p, count: n, channels: c, height: h, width: w))
    }
    return out
}

@_cdecl("bgad_model_create")
public func bgad_model_create(_ nLevels: Int64, _ channels: UnsafePointer<Int64>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        let n = try requireSize(nLevels, "n_levels")
        guard n >= 1, n <= 1024 else { throw .invalid("n_levels must lie in 1...1024, got \(n)") }
        let c = try require(channels, "channels")
        var chans: [Int] = []
        for l in 0..<n {
            guard c[l] >= 2, c[l] <= 65536 else { throw .invalid("level \(l): channel count must lie in 2...65536, got \(c[l])") }
            chans.append(Int(c[l]))
        }
        o.pointee = retainedHandle(try BGADModel(channels: chans))
    }
}

@_cdecl("bgad_model_free")
public func bgad_model_free(_ handle: OpaquePointer?) -> Int32 {
    releaseHandle(handle, BGADModel.self)
}

@_cdecl("bgad_model_set_param")
public func bgad_model_set_param(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?) -> Int32 {
    guarded { () throws(BGADError) in
        try model(handle).setParameter(try string(name, "name"), try string(value, "value"))
    }
}

@_cdecl("bgad_model_get_param")
public func bgad_model_get_param(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ buffer: UnsafeMutablePointer<CChar>?,
                                 _ capacity: Int64, _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let value = try model(handle).configuration.get(try string(name, "name"))
        let utf8 = Array(value.utf8CString)
        try require(needed, "needed").pointee = Int64(utf8.count)
        let cap = try requireSize(capacity, "capacity")
        if cap >= utf8.count {
            let b = try require(buffer, "buffer")
            for (i, ch) in utf8.enumerated() { b[i] = ch }
        }
    }
}

@_cdecl("bgad_model_default_params")
public func bgad_model_default_params(_ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                      _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let defaults = TrainingConfiguration()
        var members: [(key: String, value: JSON)] = []
        for name in TrainingConfiguration.parameterNames {
            // The knobs are text: numbers and booleans go out as JSON numbers and booleans.
            let text = try defaults.get(name)
            let value: JSON
            if text == "true" || text == "false" {
                value = .bool(text == "true")
            } else if let parsed = try? JSON.parse(text), case .number = parsed {
                value = parsed
            } else {
                value = .string(text)
            }
            members.append((name, value))
        }
        try twoCall(Array(JSON.object(members).text.utf8CString), buffer, capacity, needed, "the default parameters")
    }
}

@_cdecl("bgad_model_num_levels")
public func bgad_model_num_levels(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        try require(out, "out").pointee = Int64(try model(handle).channels.count)
    }
}

@_cdecl("bgad_model_channels")
public func bgad_model_channels(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle), o = try require(out, "out")
        for (l, c) in m.channels.enumerated() { o[l] = Int64(c) }
    }
}

@_cdecl("bgad_model_fit")
public func bgad_model_fit(
    _ handle: OpaquePointer?,
    _ normal: UnsafePointer<UnsafePointer<Float>?>?, _ nNormal: Int64,
    _ anomalous: UnsafePointer<UnsafePointer<Float>?>?, _ nAnomalous: Int64,
    _ heights: UnsafePointer<Int64>?, _ widths: UnsafePointer<Int64>?,
    _ masks: UnsafePointer<UInt8>?, _ maskHeight: Int64, _ maskWidth: Int64,
    _ calibrationHeight: Int64, _ calibrationWidth: Int64,
    _ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle)
        let normalMaps = try featureMaps(m, normal, nNormal, heights, widths, "normal features")
        var anomalousMaps: [FeatureMaps] = []
        let na = try requireSize(nAnomalous, "n_anomalous")
        var mh = 0, mw = 0
        if na > 0 {
            anomalousMaps = try featureMaps(m, anomalous, nAnomalous, heights, widths, "anomalous features")
            if masks != nil {
                mh = try requireSize(maskHeight, "mask_height"); mw = try requireSize(maskWidth, "mask_width")
                guard mh >= 1, mw >= 1 else { throw .invalid("anomaly masks must be at least 1×1, got \(mh)×\(mw)") }
                _ = try checkedProduct([na, mh, mw], "anomaly masks")
            }
        }
        let ch = try requireSize(calibrationHeight, "calibration_height"), cw = try requireSize(calibrationWidth, "calibration_width")
        guard (ch == 0) == (cw == 0) else { throw .invalid("calibration size: give both height and width, or neither (0)") }
        let data = TrainingSet(normal: normalMaps, anomalous: anomalousMaps, masks: na > 0 ? masks : nil,
                               maskHeight: mh, maskWidth: mw)
        var callback: ((TrainingProgress) -> Bool)? = nil
        if let progress {
            callback = { p in progress(Int64(p.step), Int64(p.totalSteps), p.loss, userData) == 0 }
        }
        try m.fit(data, calibrationHeight: ch == 0 ? nil : ch, calibrationWidth: cw == 0 ? nil : cw, progress: callback)
    }
}

/// The model, its feature maps and the image size of a scoring call, checked.
private func scoringArguments(
    _ handle: OpaquePointer?, _ features: UnsafePointer<UnsafePointer<Float>?>?, _ count: Int64,
    _ heights: UnsafePointer<Int64>?, _ widths: UnsafePointer<Int64>?, _ imageHeight: Int64, _ imageWidth: Int64
) throws(BGADError) -> (BGADModel, [FeatureMaps], Int, Int) {
    let m = try model(handle)
    let f = try featureMaps(m, features, count, heights, widths, "features")
    return (m, f, try requireSize(imageHeight, "image_height"), try requireSize(imageWidth, "image_width"))
}

@_cdecl("bgad_model_score_maps")
public func bgad_model_score_maps(
    _ handle: OpaquePointer?, _ features: UnsafePointer<UnsafePointer<Float>?>?, _ count: Int64,
    _ heights: UnsafePointer<Int64>?, _ widths: UnsafePointer<Int64>?,
    _ imageHeight: Int64, _ imageWidth: Int64, _ maps: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let (m, f, h, w) = try scoringArguments(handle, features, count, heights, widths, imageHeight, imageWidth)
        _ = try checkedProduct([f[0].count, h, w], "maps")
        let out = try require(maps, "maps")
        if f[0].count == 0 { return }
        try m.anomalyMaps(f, height: h, width: w, into: out)
    }
}

@_cdecl("bgad_model_score_images")
public func bgad_model_score_images(
    _ handle: OpaquePointer?, _ features: UnsafePointer<UnsafePointer<Float>?>?, _ count: Int64,
    _ heights: UnsafePointer<Int64>?, _ widths: UnsafePointer<Int64>?,
    _ imageHeight: Int64, _ imageWidth: Int64, _ scores: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let (m, f, h, w) = try scoringArguments(handle, features, count, heights, widths, imageHeight, imageWidth)
        let out = try require(scores, "scores")
        if f[0].count == 0 { return }
        try m.score(f, height: h, width: w, maps: nil, imageScores: out)
    }
}

/// The records of level `level` of `history` (empty when there is none), or an error naming a
/// bad level; shared by the model's and the detector's history entry points.
func historyRecords(_ history: TrainingHistory?, levels: Int, _ level: Int64) throws(BGADError) -> [TrainingHistory.Record] {
    guard level >= 0, level < Int64(levels) else {
        throw .invalid("level must lie in 0..<\(levels), got \(level)")
    }
    return history?.levels[Int(level)] ?? []
}

/// Writes `records` as `TrainingHistory.fieldNames.count` doubles each into `out`.
func writeHistory(_ records: [TrainingHistory.Record], _ out: UnsafeMutablePointer<Double>?, _ capacityRecords: Int64) throws(BGADError) {
    guard capacityRecords >= Int64(records.count) else {
        throw .invalid("capacity_records is \(capacityRecords), the history has \(records.count) records")
    }
    let o = try require(out, "out")
    let k = TrainingHistory.fieldNames.count
    for (i, r) in records.enumerated() { for (j, v) in r.fields.enumerated() { o[i * k + j] = v } }
}

/// Writes each level's `separation` (NaN without a history) into `out`.
func writeSeparation(_ history: TrainingHistory?, levels: Int, _ out: UnsafeMutablePointer<Double>?) throws(BGADError) {
    let o = try require(out, "out")
    for l in 0..<levels { o[l] = history?.separation(level: l) ?? .nan }
}

@_cdecl("bgad_model_history_length")
public func bgad_model_history_length(_ handle: OpaquePointer?, _ level: Int64, _ records: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle)
        try require(records, "records").pointee = Int64(try historyRecords(m.history, levels: m.channels.count, level).count)
    }
}

@_cdecl("bgad_model_history")
public func bgad_model_history(
    _ handle: OpaquePointer?, _ level: Int64, _ out: UnsafeMutablePointer<Double>?, _ capacityRecords: Int64
) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle)
        try writeHistory(try historyRecords(m.history, levels: m.channels.count, level), out, capacityRecords)
    }
}

@_cdecl("bgad_model_separation")
public func bgad_model_separation(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle)
        try writeSeparation(m.history, levels: m.channels.count, out)
    }
}

@_cdecl("bgad_model_log_likelihoods")
public func bgad_model_log_likelihoods(
    _ handle: OpaquePointer?, _ features: UnsafePointer<UnsafePointer<Float>?>?, _ count: Int64,
    _ heights: UnsafePointer<Int64>?, _ widths: UnsafePointer<Int64>?,
    _ out: UnsafePointer<UnsafeMutablePointer<Float>?>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle)
        let f = try featureMaps(m, features, count, heights, widths, "features")
        let o = try require(out, "out")
        var outs: [UnsafeMutablePointer<Float>] = []
        for l in 0..<m.channels.count {
            guard let p = o[l] else { throw .invalid("out: level \(l) is NULL") }
            outs.append(p)
        }
        if f[0].count == 0 { return }
        try m.logLikelihoods(f, into: outs)
    }
}

@_cdecl("bgad_model_calibration")
public func bgad_model_calibration(
    _ handle: OpaquePointer?, _ pixelThreshold: UnsafeMutablePointer<Double>?, _ imageThreshold: UnsafeMutablePointer<Double>?,
    _ beta: UnsafeMutablePointer<Double>?, _ maxNormality: UnsafeMutablePointer<Double>?,
    _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?, _ references: UnsafeMutablePointer<Double>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let m = try model(handle)
        guard let c = m.calibration else { throw .invalid("the model is not trained: call fit first") }
        try require(pixelThreshold, "pixel_threshold").pointee = Double(c.pixelThreshold)
        try require(imageThreshold, "image_threshold").pointee = Double(c.imageThreshold)
        try require(beta, "beta").pointee = c.beta
        try require(maxNormality, "max_normality").pointee = Double(c.maxNormality)
        try require(height, "height").pointee = Int64(c.height)
        try require(width, "width").pointee = Int64(c.width)
        let r = try require(references, "references")
        for (l, v) in c.references.enumerated() { r[l] = Double(v) }
    }
}

@_cdecl("bgad_model_is_trained")
public func bgad_model_is_trained(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded { () throws(BGADError) in
        try require(out, "out").pointee = try model(handle).isTrained ? 1 : 0
    }
}

@_cdecl("bgad_model_save")
public func bgad_model_save(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded { () throws(BGADError) in
        try ModelFile.save(try model(handle), to: try string(path, "path"))
    }
}

@_cdecl("bgad_model_load")
public func bgad_model_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        o.pointee = retainedHandle(try ModelFile.load(from: try string(path, "path")))
    }
}
