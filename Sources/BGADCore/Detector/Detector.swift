/// The product: images in, image scores, decisions and anomaly maps out. This file holds
/// the type and its state; `Detector+Fit`, `Detector+Predict`, `Detector+Images`,
/// `Detector+Tensors` and `DetectorFile` the rest.
///
/// A detector holds its configuration and, once fitted, the backbone (with its weight
/// file's bytes, embedded when saved) and the BGAD model (one flow per level plus the
/// calibration). `predict` may run from several threads at once on one detector: the
/// backbone is shared, the model is scored under a lock.

/// A borrowed 8-bit image: `height × width × channels` bytes, row-major, channels 1 or 3
/// interleaved. The pointer must stay valid during the call it is passed to.
public struct ImageView {
    /// The first byte.
    public var pixels: UnsafePointer<UInt8>
    /// Rows (≥ 1).
    public var height: Int
    /// Columns (≥ 1).
    public var width: Int
    /// 1 (gray) or 3 (RGB).
    public var channels: Int

    /// A view of `pixels`; see the properties.
    public init(pixels: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int) {
        self.pixels = pixels
        self.height = height
        self.width = width
        self.channels = channels
    }
}

/// The result of `Detector.predict` for one image.
public struct DetectorPrediction: Sendable {
    /// Image anomaly score (higher = more anomalous).
    public var score: Double
    /// `score > image threshold`.
    public var isAnomalous: Bool
    /// The anomaly map at the image's own size (`height × width`, row-major), or nil when
    /// maps were not requested.
    public var map: [Float]?
    /// The image's height.
    public var height: Int
    /// The image's width.
    public var width: Int
}

/// BGAD anomaly detector on images (see the file comment and `DetectorConfiguration`).
public final class Detector {
    /// The settings; fixed for the detector's life.
    public let configuration: DetectorConfiguration

    /// What a fitted detector holds.
    struct Fitted {
        let backbone: DetectorBackbone
        let model: BGADModel
    }

    /// The fitted state (nil before the first `fit`); read and replaced under `lock`.
    var fitted: Fitted?
    /// Guards `fitted`.
    let lock = Mutex()

    /// Serialises the detectors' engine work (backbone, training, scoring): the backbone sets
    /// OpenBLAS's process-wide thread count while it runs, and a product computed with another
    /// thread count differs in its last bits, so overlapping calls would not give the serial
    /// results. Each call already uses every thread.
    static let engineLock = Mutex()

    /// Largest side of an input image (larger images are refused, not resized).
    public static let maximumImageSide = 1 << 15

    /// XOR-ed into the training seed to seed RPAG during `fit`, so the generator's draws
    /// are not those of the choice of normal images, which uses the seed itself.
    static let rpagStreamTag: UInt64 = 0xD1B5_4A32_D192_ED03

    /// An unfitted detector.
    public init(configuration: DetectorConfiguration = DetectorConfiguration()) throws(BGADError) {
        try configuration.validate()
        self.configuration = configuration
    }

    /// An unfitted detector from a JSON object of settings (see `DetectorConfiguration`).
    public convenience init(json: String?) throws(BGADError) {
        try self.init(configuration: DetectorConfiguration(json: json))
    }

    /// A detector from stored parts (the file reader).
    init(configuration: DetectorConfiguration, fitted: Fitted?) {
        self.configuration = configuration
        self.fitted = fitted
    }

    /// The fitted state, read under the lock.
    var state: Fitted? { (try? lock.locked { () throws(BGADError) in fitted }) ?? nil }

    /// Whether the detector can predict.
    public var isFitted: Bool { state != nil }

    /// SHA-256 (hex) of the fitted detector's backbone weight file (`DetectorBackbone.weightSHA256`).
    public func backboneSHA256() throws(BGADError) -> String {
        let backbone = try requireFitted().backbone
        return try lock.locked { () throws(BGADError) in backbone.weightSHA256 }
    }

    /// The calibrated thresholds: an image is anomalous iff its score > `image`, a pixel
    /// iff its map value > `pixel`.
    public func thresholds() throws(BGADError) -> (image: Double, pixel: Double) {
        let cal = try requireFitted().model.calibration!
        return (Double(cal.imageThreshold), Double(cal.pixelThreshold))
    }

    /// The fitted model's calibration: per-level references, `S_max` (the map is `S_max − Σ`),
    /// the thresholds and the size they were taken at.
    public func calibration() throws(BGADError) -> Calibration {
        try requireFitted().model.calibration!
    }

    /// What the last `fit` did, level by level (levels in the order of `configuration.strides`);
    /// nil for a detector saved before histories were kept.
    public func trainingHistory() throws(BGADError) -> (history: TrainingHistory?, levels: Int) {
        let model = try requireFitted().model
        return (model.history, model.channels.count)
    }

    /// The backbone and model, or an error saying the detector is not fitted.
    func requireFitted() throws(BGADError) -> Fitted {
        guard let f = state, f.model.calibration != nil else {
            throw .invalid("this detector is not fitted: call fit or load a fitted detector")
        }
        return f
    }
}
