/// Settings of a `Detector`: the pipeline around the BGAD model (backbone, image size,
/// feature levels, how known anomalies are used) and the model's training knobs.
public struct DetectorConfiguration: Equatable, Sendable {
    /// Backbone strides used as feature levels, a non-empty subset of 4, 8, 16, 32 in
    /// increasing order (the paper's stride-4 level holds 76 % of the vectors and adds
    /// cost but no accuracy on ELPV, hence the default).
    public var strides: [Int] = [8, 16]
    /// Side of the square model input; every image is resized to it (≥ 32).
    public var imageSize: Int = 256
    /// Backbone name, one of `DetectorBackbones.names`.
    public var backbone: String = "lite0"
    /// Path of the backbone's converted weight file ("" = none). Needed to fit unless the
    /// detector already holds a backbone (loaded from a detector file); never saved.
    public var weights: String = ""
    /// How often each real known anomaly enters training (authors: 5).
    public var realRepeats: Int = 5
    /// RPAG pseudo anomalies generated per known anomaly (authors: 10; 0 = none).
    public var rpagPerAnomaly: Int = 10
    /// Where RPAG may paste a defect on a normal image.
    public var foreground: Foreground.Mode = .otsu
    /// Images per backbone call.
    public var featureBatch: Int = 16
    /// When images are covered by square tiles instead of being resized as a whole (`Tiling`).
    public var tiling: Tiling.Mode = .auto
    /// The BGAD model's knobs (variant included), defaults `TrainingConfiguration.detectorRecipe`
    /// (a step budget that does not depend on the number of images).
    public var training: TrainingConfiguration = TrainingConfiguration.detectorRecipe

    /// Largest `featureBatch × imageSize²` (pixels of one backbone call: 1024 images of 256²).
    public static let maximumBatchPixels = 1 << 26

    /// Every default.
    public init() {}

    /// The keys of the detector's own settings, in the order `json` writes them; the
    /// training knobs (`TrainingConfiguration.parameterNames`) follow, "variant" first.
    public static let detectorKeys = [
        "backbone", "weights", "image_size", "strides", "foreground", "real_repeats", "rpag_per_anomaly", "feature_batch",
        "tiling",
    ]

    /// Every key `set` accepts, in the order `json` writes them.
    public static var keys: [String] {
        ["variant"] + detectorKeys + TrainingConfiguration.parameterNames.filter { $0 != "variant" }
    }

    /// Throws unless every setting is in range; the message names the key.
    public func validate() throws(BGADError) {
        guard !strides.isEmpty, strides.count <= 4 else { throw .invalid("strides: give 1 to 4 of 4, 8, 16, 32, got \(strides)") }
        for s in strides where ![4, 8, 16, 32].contains(s) {
            throw .invalid("strides: \(s) is not a backbone stride (4, 8, 16, 32)")
        }
        guard strides == strides.sorted(), Set(strides).count == strides.count else {
            throw .invalid("strides must be distinct and increasing, got \(strides)")
        }
        guard imageSize >= 32, imageSize <= EfficientNetLite.maximumInputSide else {
            throw .invalid("image_size must lie in 32...\(EfficientNetLite.maximumInputSide), got \(imageSize)")
        }
        guard DetectorBackbones.names.contains(backbone) else {
            throw .invalid("backbone: unknown name '\(backbone)'; known: \(DetectorBackbones.names.joined(separator: ", "))")
        }
        guard (0...1000).contains(realRepeats) else { throw .invalid("real_repeats must lie in 0...1000, got \(realRepeats)") }
        guard (0...1000).contains(rpagPerAnomaly) else { throw .invalid("rpag_per_anomaly must lie in 0...1000, got \(rpagPerAnomaly)") }
        guard (1...1024).contains(featureBatch) else { throw .invalid("feature_batch must lie in 1...1024, got \(featureBatch)") }
        // A batch's pixels bound the memory of one backbone call (a loaded file too).
        guard featureBatch * imageSize * imageSize <= DetectorConfiguration.maximumBatchPixels else {
            throw .invalid("feature_batch × image_size² must be ≤ \(DetectorConfiguration.maximumBatchPixels), got \(featureBatch) × \(imageSize)²")
        }
        try training.validate()
    }

    /// Sets one key from a JSON value (numbers, strings, booleans; "strides" an array of numbers).
    /// Throws naming the key for an unknown key or a value of the wrong type; ranges are
    /// checked by `validate`.
    public mutating func set(_ key: String, _ value: JSON) throws(BGADError) {
        func int() throws(BGADError) -> Int {
            guard case .number(let t) = value, let v = Int(t) else { throw .invalid("\(key): expected an integer, got \(value.text)") }
            return v
        }
        func string() throws(BGADError) -> String {
            guard case .string(let s) = value else { throw .invalid("\(key): expected a string, got \(value.text)") }
            return s
        }
        switch key {
        case "strides":
            guard case .array(let items) = value, items.count <= 4 else {
                throw .invalid("strides: expected an array of 1 to 4 integers among 4, 8, 16, 32, got \(value.text)")
            }
            var s: [Int] = []
            for item in items {
                guard case .number(let t) = item, let v = Int(t) else { throw .invalid("strides: expected integers, got \(value.text)") }
                s.append(v)
            }
            strides = s
        case "image_size": imageSize = try int()
        case "backbone": backbone = try string()
        case "weights": weights = try string()
        case "real_repeats": realRepeats = try int()
        case "rpag_per_anomaly": rpagPerAnomaly = try int()
        case "feature_batch": featureBatch = try int()
        case "tiling":
            let text = try string()
            guard let mode = Tiling.Mode(rawValue: text) else {
                throw .invalid("tiling must be 'auto', 'on' or 'off', got '\(text)'")
            }
            tiling = mode
        case "foreground":
            switch try string() {
            case "otsu": foreground = .otsu
            case "whole": foreground = .whole
            case let other: throw .invalid("foreground must be 'otsu' or 'whole', got '\(other)'")
            }
        default:
            guard TrainingConfiguration.parameterNames.contains(key) else {
                throw .invalid("unknown setting '\(key)'; known: \(DetectorConfiguration.keys.joined(separator: ", "))")
            }
            let text: String
            switch value {
            case .number(let t): text = t
            case .string(let s): text = s
            case .bool(let b): text = b ? "true" : "false"
            default: throw .invalid("\(key): expected a number, string or boolean, got \(value.text)")
            }
            try training.set(key, text)
        }
    }

    /// The value of one key as JSON (the inverse of `set`).
    public func get(_ key: String) throws(BGADError) -> JSON {
        switch key {
        case "strides": return .array(strides.map { JSON.number($0) })
        case "image_size": return .number(imageSize)
        case "backbone": return .string(backbone)
        case "weights": return .string(weights)
        case "real_repeats": return .number(realRepeats)
        case "rpag_per_anomaly": return .number(rpagPerAnomaly)
        case "feature_batch": return .number(featureBatch)
        case "tiling": return .string(tiling.rawValue)
        case "foreground": return .string(foreground == .otsu ? "otsu" : "whole")
        default:
            guard TrainingConfiguration.parameterNames.contains(key) else { throw .invalid("unknown setting '\(key)'") }
            // Training knobs are text; numbers and booleans go out as JSON numbers and booleans.
            let t = try training.get(key)
            if t == "true" || t == "false" { return .bool(t == "true") }
            if let v = try? JSON.parse(t), case .number = v { return .number(t) }
            return .string(t)
        }
    }

    /// A configuration from a JSON object of settings (`nil`, "" or "{}" = every default),
    /// validated.
    public init(json: String?) throws(BGADError) {
        self.init()
        guard let json, !json.allSatisfy({ $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }) else { return }
        guard case .object(let members) = try JSON.parse(json) else {
            throw .invalid("configuration: expected a JSON object of settings")
        }
        for m in members { try set(m.key, m.value) }
        try validate()
    }

    /// Every setting as a JSON object (keys in the order of `keys`).
    public var json: JSON {
        .object(DetectorConfiguration.keys.map { k in (k, (try? get(k)) ?? .null) })
    }
}
