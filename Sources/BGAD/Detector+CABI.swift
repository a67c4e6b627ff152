import BGADCore

/// C entry points of the Detector (see `bgad.h`, "Detector"): images in, scores and anomaly
/// maps out. A handle is an `Unmanaged<Detector>`.
///
/// Stubs: every entry point reports "not implemented yet" until the engine side lands.

/// `bgad_image` of `bgad.h`: a pointer and three int64 sizes (C layout).
public struct BGADCImage {
    /// height × width × channels bytes, or NULL (a whole-image mask).
    public var pixels: UnsafePointer<UInt8>?
    /// Rows.
    public var height: Int64
    /// Columns.
    public var width: Int64
    /// 1 (gray) or 3 (RGB).
    public var channels: Int64
}

private func notYet() throws(BGADError) -> Never { throw BGADError(.internal, "not implemented yet") }

@_cdecl("bgad_detector_create")
public func bgad_detector_create(_ json: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_config")
public func bgad_detector_config(_ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<CChar>?, _ capacity: Int64,
                                 _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_is_fitted")
public func bgad_detector_is_fitted(_ handle: OpaquePointer?, _ fitted: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_fit")
public func bgad_detector_fit(
    _ handle: OpaquePointer?, _ normal: UnsafeRawPointer?, _ nNormal: Int64,
    _ anomalous: UnsafeRawPointer?, _ masks: UnsafeRawPointer?, _ nAnomalous: Int64,
    _ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_fit_paths")
public func bgad_detector_fit_paths(
    _ handle: OpaquePointer?, _ normalPaths: UnsafePointer<UnsafePointer<CChar>?>?, _ nNormal: Int64,
    _ anomalousPaths: UnsafePointer<UnsafePointer<CChar>?>?, _ maskPaths: UnsafePointer<UnsafePointer<CChar>?>?,
    _ nAnomalous: Int64, _ progress: BGADProgressCallback?, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_predict")
public func bgad_detector_predict(
    _ handle: OpaquePointer?, _ images: UnsafeRawPointer?, _ n: Int64,
    _ scores: UnsafeMutablePointer<Double>?, _ decisions: UnsafeMutablePointer<Int32>?,
    _ maps: UnsafePointer<UnsafeMutablePointer<Float>?>?
) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_predict_path")
public func bgad_detector_predict_path(
    _ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?, _ score: UnsafeMutablePointer<Double>?,
    _ decision: UnsafeMutablePointer<Int32>?, _ map: UnsafeMutablePointer<Float>?, _ mapCapacity: Int64,
    _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?
) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_thresholds")
public func bgad_detector_thresholds(_ handle: OpaquePointer?, _ imageThreshold: UnsafeMutablePointer<Double>?,
                                     _ pixelThreshold: UnsafeMutablePointer<Double>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_save")
public func bgad_detector_save(_ handle: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_load")
public func bgad_detector_load(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_to_bytes")
public func bgad_detector_to_bytes(_ handle: OpaquePointer?, _ buffer: UnsafeMutablePointer<UInt8>?, _ capacity: Int64,
                                   _ needed: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_from_bytes")
public func bgad_detector_from_bytes(_ data: UnsafePointer<UInt8>?, _ length: Int64,
                                     _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in try notYet() }
}

@_cdecl("bgad_detector_free")
public func bgad_detector_free(_ handle: OpaquePointer?) -> Int32 {
    guarded { () throws(BGADError) in }
}
