/// The feature extractor a `Detector` runs: what it needs of a backbone network.
public protocol DetectorFeatureExtractor: AnyObject {
    /// Channels of the feature map at `stride`, or nil when the network has no such level.
    func channels(stride: Int) -> Int?
    /// Size of the feature map at `stride` for an input of `height × width`.
    func featureSize(height: Int, width: Int, stride: Int) -> (height: Int, width: Int)
    /// Feature maps of `count` 8-bit images of `height × width × channels` (resized to the
    /// input size by the network when they differ): one `(count, C, h, w)` buffer per stride.
    func features(images: UnsafePointer<UInt8>, count: Int, height: Int, width: Int, channels: Int,
                  inputHeight: Int, inputWidth: Int, strides: [Int], outputs: [UnsafeMutablePointer<Float>]) throws(BGADError)
}

extension EfficientNetLite: DetectorFeatureExtractor {
    /// Channels of the variant's level at `stride` (Lite0: 24, 40, 112, 320 at 4, 8, 16, 32).
    public func channels(stride: Int) -> Int? { variant.level(stride: stride)?.channels }
    /// `EfficientNetLite.featureSize(height:width:stride:)`.
    public func featureSize(height: Int, width: Int, stride: Int) -> (height: Int, width: Int) {
        EfficientNetLite.featureSize(height: height, width: width, stride: stride)
    }
}

/// A backbone as a detector holds it: its name, the bytes of its weight file (embedded in
/// saved detectors) with their CRC-32, and the network built from them.
public final class DetectorBackbone {
    /// Name, one of `DetectorBackbones.names`.
    public let name: String
    /// The engine weight file's bytes, as read.
    public let weightBytes: [UInt8]
    /// CRC-32 (zlib's) of `weightBytes`: the integrity check stored in detector files.
    public let weightCRC: UInt32
    /// SHA-256 of `weightBytes` (64 hex digits): the backbone's provenance, equal to the digest
    /// the Python package records for the official conversion (`bgad.weights`) unless the
    /// weights were altered. Computed from the bytes, so never stored twice.
    public private(set) lazy var weightSHA256: String = SHA256.hex(weightBytes)
    /// The network.
    public let network: DetectorFeatureExtractor

    init(name: String, weightBytes: [UInt8], network: DetectorFeatureExtractor) {
        self.name = name
        self.weightBytes = weightBytes
        self.weightCRC = crc32(weightBytes)
        self.network = network
    }
}

/// The one place that maps a backbone name to its network.
public enum DetectorBackbones {
    /// Backbone names a detector accepts: the EfficientNet-Lite variants.
    public static let names = EfficientNetLite.Variant.allCases.map { $0.name }

    /// Builds backbone `name` from the bytes of its engine weight file (validated by the
    /// network's reader); `source` names the bytes in error messages.
    public static func make(name: String, weightBytes: [UInt8], source: String) throws(BGADError) -> DetectorBackbone {
        guard let variant = EfficientNetLite.Variant(name: name) else {
            throw .invalid("backbone: unknown name '\(name)'; known: \(names.joined(separator: ", "))")
        }
        // The weight file names its variant; one of another variant is refused, naming both.
        let net = try EfficientNetLite(variant: variant, weightFileBytes: weightBytes, name: source)
        net.fixedBands = true  // an image's features must not depend on its batch (see `fixedBands`)
        return DetectorBackbone(name: name, weightBytes: weightBytes, network: net)
    }

    /// Reads backbone `name`'s weight file at `path`.
    public static func load(name: String, path: String) throws(BGADError) -> DetectorBackbone {
        try make(name: name, weightBytes: EfficientNetLiteWeightFile.readBytes(path: path), source: path)
    }
}
