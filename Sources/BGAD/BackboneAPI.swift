import BGADCore

/// C entry points of the built-in backbone (EfficientNet-Lite0, Lite1, Lite2) (see `bgad.h`,
/// "Backbone").

private func backbone(_ handle: OpaquePointer?) throws(BGADError) -> EfficientNetLite {
    try object(handle, EfficientNetLite.self, "backbone handle")
}

/// The variant of a C variant code (0, 1, 2 = Lite0, Lite1, Lite2).
private func variant(_ code: Int32) throws(BGADError) -> EfficientNetLite.Variant {
    guard let v = EfficientNetLite.Variant(rawValue: Int(code)) else {
        throw .invalid("variant must be 0, 1 or 2 (EfficientNet-Lite0/1/2), got \(code)")
    }
    return v
}

@_cdecl("bgad_backbone_load_variant")
public func bgad_backbone_load_variant(
    _ path: UnsafePointer<CChar>?, _ variantCode: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let p = try require(path, "path"), o = try require(out, "out")
        o.pointee = nil
        var expected: EfficientNetLite.Variant? = nil
        if variantCode != -1 { expected = try variant(variantCode) }
        let model = try EfficientNetLite(variant: expected, weightFile: String(cString: p))
        o.pointee = retainedHandle(model)
    }
}

@_cdecl("bgad_backbone_variant")
public func bgad_backbone_variant(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "variant")
        o.pointee = Int32(try backbone(handle).variant.rawValue)
    }
}

@_cdecl("bgad_backbone_free")
public func bgad_backbone_free(_ handle: OpaquePointer?) -> Int32 {
    releaseHandle(handle, EfficientNetLite.self)
}

@_cdecl("bgad_backbone_variant_feature_shape")
public func bgad_backbone_variant_feature_shape(
    _ variantCode: Int32, _ inputHeight: Int64, _ inputWidth: Int64, _ stride: Int32,
    _ channels: UnsafeMutablePointer<Int64>?, _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let c = try require(channels, "channels"), h = try require(height, "height"), w = try require(width, "width")
        let v = try variant(variantCode)
        let ih = try requireSize(inputHeight, "input_height"), iw = try requireSize(inputWidth, "input_width")
        guard ih >= 1, iw >= 1 else { throw .invalid("input size must be positive, got \(ih)×\(iw)") }
        guard ih <= Int(Int32.max), iw <= Int(Int32.max) else {
            throw .invalid("input size must be at most 2³¹ − 1 per side, got \(ih)×\(iw)")
        }
        guard let level = v.level(stride: Int(stride)) else {
            throw .invalid("no feature level at stride \(stride); available: 4, 8, 16, 32")
        }
        let size = EfficientNetLite.featureSize(height: ih, width: iw, stride: Int(stride))
        c.pointee = Int64(level.channels)
        h.pointee = Int64(size.height)
        w.pointee = Int64(size.width)
    }
}

private func levelArguments(
    _ strides: UnsafePointer<Int32>?, _ numLevels: Int64, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?
) throws(BGADError) -> ([Int], [UnsafeMutablePointer<Float>]) {
    let n = try requireSize(numLevels, "num_levels")
    guard n >= 1, n <= 4 else { throw .invalid("num_levels must be 1…4, got \(n)") }
    let s = try require(strides, "strides"), o = try require(outputs, "outputs")
    var ss: [Int] = [], os: [UnsafeMutablePointer<Float>] = []
    for i in 0..<n {
        guard let p = o[i] else { throw .invalid("outputs[\(i)] is NULL") }
        ss.append(Int(s[i]))
        os.append(p)
    }
    return (ss, os)
}

private func layout(_ code: Int32) throws(BGADError) -> EfficientNetLite.Layout {
    switch code {
    case 0: return .nchw
    case 1: return .nhwc
    default: throw .invalid("layout must be 0 (NCHW) or 1 (NHWC), got \(code)")
    }
}

private func imageArguments(_ count: Int64, _ height: Int64, _ width: Int64, _ channels: Int64, _ ih: Int64, _ iw: Int64)
    throws(BGADError) -> (Int, Int, Int, Int, Int, Int) {
    let n = try requireSize(count, "count"), h = try requireSize(height, "height"), w = try requireSize(width, "width")
    let c = try requireSize(channels, "channels")
    let a = try requireSize(ih, "input_height"), b = try requireSize(iw, "input_width")
    _ = try checkedProduct([n, h, w, c], "images")
    return (n, h, w, c, a, b)
}

@_cdecl("bgad_backbone_features")
public func bgad_backbone_features(
    _ handle: OpaquePointer?, _ images: UnsafePointer<UInt8>?, _ count: Int64, _ height: Int64, _ width: Int64,
    _ channels: Int64, _ inputHeight: Int64, _ inputWidth: Int64,
    _ strides: UnsafePointer<Int32>?, _ numLevels: Int64, _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let model = try backbone(handle)
        let (n, h, w, c, ih, iw) = try imageArguments(count, height, width, channels, inputHeight, inputWidth)
        let img = try require(images, "images")
        let (s, o) = try levelArguments(strides, numLevels, outputs)
        try model.features(images: img, count: n, height: h, width: w, channels: c,
                           inputHeight: ih, inputWidth: iw, strides: s, outputs: o)
    }
}

@_cdecl("bgad_backbone_features_preprocessed")
public func bgad_backbone_features_preprocessed(
    _ handle: OpaquePointer?, _ input: UnsafePointer<Float>?, _ layoutCode: Int32, _ count: Int64, _ height: Int64,
    _ width: Int64, _ strides: UnsafePointer<Int32>?, _ numLevels: Int64,
    _ outputs: UnsafePointer<UnsafeMutablePointer<Float>?>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let model = try backbone(handle)
        let n = try requireSize(count, "count"), h = try requireSize(height, "height"), w = try requireSize(width, "width")
        _ = try checkedProduct([n, h, w, 3], "input")
        let x = try require(input, "input")
        let l = try layout(layoutCode)
        let (s, o) = try levelArguments(strides, numLevels, outputs)
        try model.features(preprocessed: x, layout: l, count: n, height: h, width: w, strides: s, outputs: o)
    }
}

@_cdecl("bgad_backbone_classify")
public func bgad_backbone_classify(
    _ handle: OpaquePointer?, _ images: UnsafePointer<UInt8>?, _ count: Int64, _ height: Int64, _ width: Int64,
    _ channels: Int64, _ inputHeight: Int64, _ inputWidth: Int64, _ logits: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let model = try backbone(handle)
        let (n, h, w, c, ih, iw) = try imageArguments(count, height, width, channels, inputHeight, inputWidth)
        let img = try require(images, "images"), out = try require(logits, "logits")
        try model.classify(images: img, count: n, height: h, width: w, channels: c,
                           inputHeight: ih, inputWidth: iw, logits: out)
    }
}

@_cdecl("bgad_backbone_classify_preprocessed")
public func bgad_backbone_classify_preprocessed(
    _ handle: OpaquePointer?, _ input: UnsafePointer<Float>?, _ layoutCode: Int32, _ count: Int64, _ height: Int64,
    _ width: Int64, _ logits: UnsafeMutablePointer<Float>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let model = try backbone(handle)
        let n = try requireSize(count, "count"), h = try requireSize(height, "height"), w = try requireSize(width, "width")
        _ = try checkedProduct([n, h, w, 3], "input")
        let x = try require(input, "input"), out = try require(logits, "logits")
        try model.classify(preprocessed: x, layout: layout(layoutCode), count: n, height: h, width: w, logits: out)
    }
}
