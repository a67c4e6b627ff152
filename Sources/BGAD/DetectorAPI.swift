import BGADCore

/// C entry points of the Detector (see `bgad.h`, "Detector"): images in, scores and anomaly
/// maps out. A handle is a retained `Detector` (`Handles.swift`); a detector may be shared between
/// threads for prediction.

/// Size of `bgad_image` in C: a pointer and three int64 (x86-64 and arm64 LP64 layout).
private let imageStride = 32

private func detector(_ handle: OpaquePointer?) throws(BGADError) -> Detector {
    try object(handle, Detector.self, "detector")
}

private func publish(_ d: Detector, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = retainedHandle(d)
}

/// Entry `i` of a `bgad_image` array, its sizes checked (pixels may be NULL only when
/// `allowNull`, for a whole-image mask).
private func imageEntry(_ array: UnsafeRawPointer, _ i: Int, _ name: String, allowNull: Bool = false)
    throws(BGADError) -> (pixels: UnsafePointer<UInt8>?, height: Int, width: Int, channels: Int) {
    let base = array + i * imageStride
    let pixels = base.load(as: UnsafePointer<UInt8>?.self)
    let h = base.load(fromByteOffset: 8, as: Int64.self)
    let w = base.load(fromByteOffset: 16, as: Int64.self)
    let c = base.load(fromByteOffset: 24, as: Int64.self)
    if pixels == nil {
        guard allowNull else { throw .invalid("\(name): pixels is NULL") }
        return (nil, 0, 0, 0)
    }
    guard h >= 1, w >= 1, h <= Int64(Detector.maximumImageSide), w <= Int64(Detector.maximumImageSide) else {
        throw .invalid("\(name): size must lie between 1×1 and \(Detector.maximumImageSide)×\(Detector.maximumImageSide), got \(h)×\(w)")
    }
    guard c == 1 || c == 3 else { throw .invalid("\(name): channels must be 1 (gray) or 3 (RGB), got \(c)") }
    return (pixels, Int(h), Int(w), Int(c))
}

/// A copy of entry `i` as an engine `Image`.
private func copiedImage(_ array: UnsafeRawPointer, _ i: Int, _ name: String) throws(BGADError) -> Image {
    let e = try imageEntry(array, i, name)
    let n = e.height * e.width * e.channels
    return try Image(height: e.height, width: e.width, channels: e.channels,
                     pixels: Array(UnsafeBufferPointer(start: e.pixels!, count: n)))
}

/// The optional mask at entry `i` of `array` for `image`, copied (nil when its pixels are
/// NULL: the whole image is the defect); 1 channel and the image's size, else an error
/// naming the mask (`name`) and the image (`imageName`).
private func copiedMask(_ array: UnsafeRawPointer, _ i: Int, for image: Image, _ name: String, _ imageName: String)
    throws(BGADError) -> Image? {
    let m = try imageEntry(array, i, name, allowNull: true)
    guard let p = m.pixels else { return nil }
    guard m.channels == 1 else { throw .invalid("\(name): channels must be 1, got \(m.channels)") }
    guard m.height == image.height, m.width == image.width else {
        throw .invalid("\(name) is \(m.height)×\(m.width) but \(imageName) is \(image.height)×\(image.width)")
    }
    return try Image(height: m.height, width: m.width, channels: 1,
                     pixels: Array(UnsafeBufferPointer(start: p, count: m.height * m.width)))
}

private func cString(_ p: UnsafePointer<CChar>?, _ name: String) throws(BGADError) -> String {
    guard let p else { throw .invalid("\(name) is NULL") }
    return String(cString: p)
}

/// A mask PNG as 1 channel: a colour file's pixel is its largest channel (as Python's reader).
private func readMask(_ path: String) throws(BGADError) -> Image {
    let im = try PNG.read(path: path, mode: .native)
    if im.channels == 1 { return im }
    var out = Image(height: im.height, width: im.width, channels: 1)
    for p in 0..<(im.height * im.width) { out.pixels[p] = max(im.pixels[3 * p], im.pixels[3 * p + 1], im.pixels[3 * p + 2]) }
    return out
}

private func fitCallback(_ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?) -> ((TrainingProgress) -> Bool)? {
    guard let progress else { return nil }
    return { p in progress(Int64(p.step), Int64(p.totalSteps), p.loss, userData) == 0 }
}

@_cdecl("bgad_detector_create")
public func bgad_detector_create(_ json: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        o.pointee = nil
        publish(try Detector(json: json.map { String(cString: $0) }), o)
    }
}

@_cdecl("bgad_detector_config")
public func bgad_detector_config(_ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                 _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let text = Array(try detector(handle).configuration.json.text.utf8CString)
        try twoCall(text, buffer, capacity, needed, "the configuration")
    }
}

@_cdecl("bgad_detector_is_fitted")
public func bgad_detector_is_fitted(_ handle: OpaquePointer?, _ fitted: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded { () throws(BGADError) in
        try require(fitted, "fitted").pointee = try detector(handle).isFitted ? 1 : 0
    }
}

/// The detector and image counts of a fit entry point, checked (at least one normal image).
private func fitArguments(_ handle: OpaquePointer?, _ nNormal: Int64, _ nAnomalous: Int64)
    throws(BGADError) -> (Detector, Int, Int) {
    let d = try detector(handle)
    let nn = try requireSize(nNormal, "n_normal"), na = try requireSize(nAnomalous, "n_anomalous")
    guard nn >= 1 else { throw .invalid("n_normal must be ≥ 1, got \(nn)") }
    return (d, nn, na)
}

@_cdecl("bgad_detector_fit")
public func bgad_detector_fit(
    _ handle: OpaquePointer?, _ normal: UnsafeRawPointer?, _ nNormal: Int64,
    _ anomalous: UnsafeRawPointer?, _ masks: UnsafeRawPointer?, _ nAnomalous: Int64,
    _ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guarded { () throws(BGADError) in
        let (d, nn, na) = try fitArguments(handle, nNormal, nAnomalous)
        guard let normalArray = normal else { throw .invalid("normal is NULL") }
        if na > 0, anomalous == nil { throw .invalid("anomalous is NULL") }
        // Each image is copied when the fit reaches it (not all at once).
        let source = Detector.Source(
            normalCount: nn, anomalousCount: na,
            normal: { i throws(BGADError) in try copiedImage(normalArray, i, "normal[\(i)]") },
            anomalous: { i throws(BGADError) in
                let a = try copiedImage(anomalous!, i, "anomalous[\(i)]")
                guard let masks else { return (a, nil) }
                return (a, try copiedMask(masks, i, for: a, "masks[\(i)]", "anomalous[\(i)]"))
            })
        try d.fit(source, progress: fitCallback(progress, userData))
    }
}

@_cdecl("bgad_detector_fit_paths")
public func bgad_detector_fit_paths(
    _ handle: OpaquePointer?, _ normalPaths: UnsafePointer<UnsafePointer<CChar>?>?, _ nNormal: Int64,
    _ anomalousPaths: UnsafePointer<UnsafePointer<CChar>?>?, _ maskPaths: UnsafePointer<UnsafePointer<CChar>?>?,
    _ nAnomalous: Int64, _ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guarded { () throws(BGADError) in
        let (d, nn, na) = try fitArguments(handle, nNormal, nAnomalous)
        let np = try require(normalPaths, "normal_paths")
        let ap = na > 0 ? try require(anomalousPaths, "anomalous_paths") : nil
        // Each file is read when the fit reaches it (not all at once).
        let source = Detector.Source(
            normalCount: nn, anomalousCount: na,
            normal: { i throws(BGADError) in try PNG.read(path: try cString(np[i], "normal_paths[\(i)]")) },
            anomalous: { i throws(BGADError) in
                let a = try PNG.read(path: try cString(ap![i], "anomalous_paths[\(i)]"))
                guard let mp = maskPaths, let p = mp[i] else { return (a, nil) }
                let path = String(cString: p)
                let m = try readMask(path)
                guard m.height == a.height, m.width == a.width else {
                    throw .invalid("mask \(path) is \(m.height)×\(m.width) but its image is \(a.height)×\(a.width)")
                }
                return (a, m)
            })
        try d.fit(source, progress: fitCallback(progress, userData))
    }
}

/// `bgad_image_loader`: fills image `index` of `kind` (0 normal, 1 anomalous) and its mask.
public typealias BGADImageLoader = @convention(c) (Int32, Int64, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?,
                                                   UnsafeMutableRawPointer?) -> Int32

@_cdecl("bgad_detector_fit_loader")
public func bgad_detector_fit_loader(
    _ handle: OpaquePointer?, _ nNormal: Int64, _ nAnomalous: Int64,
    _ load: BGADImageLoader?, _ loaderData: UnsafeMutableRawPointer?,
    _ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guarded { () throws(BGADError) in
        let (d, nn, na) = try fitArguments(handle, nNormal, nAnomalous)
        guard let load else { throw .invalid("load is NULL") }
        // Two bgad_image slots the loader fills; each image is copied at once.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: 2 * imageStride, alignment: 8)
        defer { slots.deallocate() }
        func fetch(_ kind: Int32, _ i: Int) throws(BGADError) -> (Image, Image?) {
            slots.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * imageStride)
            let what = kind == 0 ? "normal image \(i)" : "anomalous image \(i)"
            guard load(kind, Int64(i), slots, slots + imageStride, loaderData) == 0 else {
                throw BGADError(.cancelled, "the image loader stopped the fit at \(what)")
            }
            let image = try copiedImage(UnsafeRawPointer(slots), 0, what)
            guard kind == 1 else { return (image, nil) }
            return (image, try copiedMask(UnsafeRawPointer(slots), 1, for: image, "the mask of \(what)", "its image"))
        }
        let source = Detector.Source(normalCount: nn, anomalousCount: na,
                                     normal: { i throws(BGADError) in try fetch(0, i).0 },
                                     anomalous: { i throws(BGADError) in try fetch(1, i) })
        try d.fit(source, progress: fitCallback(progress, userData))
    }
}

@_cdecl("bgad_detector_predict")
public func bgad_detector_predict(
    _ handle: OpaquePointer?, _ images: UnsafeRawPointer?, _ n: Int64,
    _ scores: UnsafeMutablePointer<Double>?, _ decisions: UnsafeMutablePointer<Int32>?,
    _ maps: UnsafePointer<UnsafeMutablePointer<Float>?>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let d = try detector(handle)
        let count = try requireSize(n, "n")
        let s = try require(scores, "scores")
        guard count > 0 else { try d.predict([ImageView](), scores: s, decisions: nil, maps: nil); return }
        guard let array = images else { throw .invalid("images is NULL") }
        var views: [ImageView] = []
        for i in 0..<count {
            let e = try imageEntry(array, i, "images[\(i)]")
            views.append(ImageView(pixels: e.pixels!, height: e.height, width: e.width, channels: e.channels))
        }
        let mapPointers = maps.map { m in (0..<count).map { m[$0] } }
        try d.predict(views, scores: s, decisions: decisions, maps: mapPointers)
    }
}

@_cdecl("bgad_detector_predict_path")
public func bgad_detector_predict_path(
    _ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ score: UnsafeMutablePointer<Double>?,
    _ decision: UnsafeMutablePointer<Int32>?, _ map: UnsafeMutablePointer<Float>?, _ mapCapacity: Int64,
    _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let d = try detector(handle)
        let s = try require(score, "score"), h = try require(height, "height"), w = try require(width, "width")
        _ = try d.thresholds()  // an unfitted detector fails before the file is read
        let image = try PNG.read(path: try cString(path, "path"))
        h.pointee = Int64(image.height)
        w.pointee = Int64(image.width)
        if map != nil {
            let cap = try requireSize(mapCapacity, "map_capacity")
            guard cap >= image.height * image.width else {
                throw .invalid("map holds \(cap) floats, the \(image.height)×\(image.width) image needs \(image.height * image.width)")
            }
        }
        try image.pixels.withUnsafeBufferPointer { p throws(BGADError) in
            let view = ImageView(pixels: p.baseAddress!, height: image.height, width: image.width, channels: image.channels)
            try d.predict([view], scores: s, decisions: decision, maps: [map])
        }
    }
}

@_cdecl("bgad_detector_thresholds")
public func bgad_detector_thresholds(_ handle: OpaquePointer?, _ imageThreshold: UnsafeMutablePointer<Double>?,
                                     _ pixelThreshold: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let t = try detector(handle).thresholds()
        try require(imageThreshold, "image_threshold").pointee = t.image
        try require(pixelThreshold, "pixel_threshold").pointee = t.pixel
    }
}

@_cdecl("bgad_detector_backbone_sha256")
public func bgad_detector_backbone_sha256(_ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?) -> Int32 {
    guarded { () throws(BGADError) in
        let text = Array(try detector(handle).backboneSHA256().utf8CString)
        let b = try require(buffer, "buffer")
        text.withUnsafeBufferPointer { b.update(from: $0.baseAddress!, count: text.count) }
    }
}

/// The fitted detector's training history and level count.
private func fittedHistory(_ handle: OpaquePointer?) throws(BGADError) -> (TrainingHistory?, Int) {
    try detector(handle).trainingHistory()
}

@_cdecl("bgad_detector_history_length")
public func bgad_detector_history_length(_ handle: OpaquePointer?, _ level: Int64, _ records: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (h, levels) = try fittedHistory(handle)
        try require(records, "records").pointee = Int64(try historyRecords(h, levels: levels, level).count)
    }
}

@_cdecl("bgad_detector_history")
public func bgad_detector_history(
    _ handle: OpaquePointer?, _ level: Int64, _ out: UnsafeMutablePointer<Double>?, _ capacityRecords: Int64
) -> Int32 {
    guarded { () throws(BGADError) in
        let (h, levels) = try fittedHistory(handle)
        try writeHistory(try historyRecords(h, levels: levels, level), out, capacityRecords)
    }
}

@_cdecl("bgad_detector_separation")
public func bgad_detector_separation(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (h, levels) = try fittedHistory(handle)
        try writeSeparation(h, levels: levels, out)
    }
}

@_cdecl("bgad_detector_save")
public func bgad_detector_save(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded { () throws(BGADError) in
        try detector(handle).save(to: try cString(path, "path"))
    }
}

@_cdecl("bgad_detector_load")
public func bgad_detector_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        o.pointee = nil
        publish(try Detector.load(from: try cString(path, "path")), o)
    }
}

@_cdecl("bgad_detector_to_bytes")
public func bgad_detector_to_bytes(_ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ capacity: Int64,
                                   _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        try twoCall(try detector(handle).encoded(), buffer, capacity, needed, "the detector")
    }
}

@_cdecl("bgad_detector_from_bytes")
public func bgad_detector_from_bytes(_ data: UnsafePointer<UInt8>?, _ length: Int64,
                                     _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        o.pointee = nil
        let n = try requireSize(length, "length")
        let d = try require(data, "data")
        publish(try Detector.decode(Array(UnsafeBufferPointer(start: d, count: n))), o)
    }
}

@_cdecl("bgad_detector_free")
public func bgad_detector_free(_ handle: OpaquePointer?) -> Int32 {
    releaseHandle(handle, Detector.self)
}

// MARK: - Tensors (export)

/// Tensor `index` of the fitted detector's export list (`Detector.exportedTensors`).
private func exportedTensor(_ handle: OpaquePointer?, _ index: Int64) throws(BGADError) -> DetectorTensor {
    let list = try detector(handle).exportedTensors()
    guard index >= 0, index < Int64(list.count) else {
        throw .invalid("tensor index \(index) is outside 0..<\(list.count)")
    }
    return list[Int(index)]
}

@_cdecl("bgad_detector_tensor_count")
public func bgad_detector_tensor_count(_ handle: OpaquePointer?, _ count: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let c = try require(count, "count")
        c.pointee = Int64(try detector(handle).exportedTensors().count)
    }
}

@_cdecl("bgad_detector_tensor_info")
public func bgad_detector_tensor_info(
    _ handle: OpaquePointer?, _ index: Int64, _ name: UnsafeMutablePointer<CChar>?, _ nameCapacity: Int64,
    _ nameNeeded: UnsafeMutablePointer<Int64>?, _ shape: UnsafeMutablePointer<Int64>?, _ shapeCapacity: Int64,
    _ rank: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let t = try exportedTensor(handle, index)
        let r = try require(rank, "rank")
        r.pointee = Int64(t.shape.count)
        let cap = try requireSize(shapeCapacity, "shape_capacity")
        guard cap >= t.shape.count else { throw .invalid("shape holds \(cap) dimensions, tensor \(t.name) has \(t.shape.count)") }
        let s = try require(shape, "shape")
        for (i, d) in t.shape.enumerated() { s[i] = Int64(d) }
        try twoCall(Array(t.name.utf8CString), name, nameCapacity, nameNeeded, "the tensor name")
    }
}

@_cdecl("bgad_detector_tensor")
public func bgad_detector_tensor(_ handle: OpaquePointer?, _ index: Int64, _ data: UnsafeMutablePointer<Float>?,
                                 _ capacity: Int64, _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let t = try exportedTensor(handle, index)
        try require(needed, "needed").pointee = Int64(t.count)
        let cap = try requireSize(capacity, "capacity")
        guard cap >= t.count else { throw .invalid("tensor \(t.name) needs \(t.count) floats, the buffer holds \(cap)") }
        let d = try require(data, "data")
        let values = try t.values()
        values.withUnsafeBufferPointer { d.update(from: $0.baseAddress!, count: values.count) }
    }
}
