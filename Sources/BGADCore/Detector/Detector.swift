/// The product: images in, image scores, decisions and anomaly maps out.
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

    private var fitted: Fitted?
    /// Guards `fitted`.
    private let lock = Mutex()

    /// Serialises the detectors' engine work (backbone, training, scoring): the backbone sets
    /// OpenBLAS's process-wide thread count while it runs, and a product computed with another
    /// thread count differs in its last bits, so overlapping calls would not give the serial
    /// results. Each call already uses every thread.
    private static let engineLock = Mutex()

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

    // MARK: - Fit

    /// Where `fit` reads its images: counts and loaders called with an index (each image is
    /// loaded when its features are computed and dropped after, so a fit never holds every
    /// image; a few normal images are loaded twice, for RPAG). Loaders may throw (a missing
    /// or corrupt file) and the fit stops with that error.
    public struct Source {
        /// Number of normal images (≥ 1).
        public var normalCount: Int
        /// Number of known anomalies.
        public var anomalousCount: Int
        /// Normal image `i`.
        public var normal: (Int) throws(BGADError) -> Image
        /// Anomalous image `i` and its mask (1 channel, the image's size; nil = the whole image).
        public var anomalous: (Int) throws(BGADError) -> (image: Image, mask: Image?)

        /// A source; see the properties.
        public init(normalCount: Int, anomalousCount: Int, normal: @escaping (Int) throws(BGADError) -> Image,
                    anomalous: @escaping (Int) throws(BGADError) -> (image: Image, mask: Image?)) {
            self.normalCount = normalCount
            self.anomalousCount = anomalousCount
            self.normal = normal
            self.anomalous = anomalous
        }
    }

    /// Fits on normal images and known anomalies (any size, gray or RGB) held in memory;
    /// see `fit(_:progress:)`.
    /// - Parameters:
    ///   - masks: nil (every anomaly is whole-image) or one entry per anomalous image, each
    ///     nil (whole image) or a 1-channel mask of its image's size.
    ///   - progress: called after every optimisation step; return false to cancel.
    public func fit(normal: [Image], anomalous: [Image] = [], masks: [Image?]? = nil,
                    progress: ((TrainingProgress) -> Bool)? = nil) throws(BGADError) {
        if let masks, masks.count != anomalous.count {
            throw .invalid("got \(anomalous.count) anomalous images but \(masks.count) masks")
        }
        try fit(Source(normalCount: normal.count, anomalousCount: anomalous.count,
                       normal: { normal[$0] }, anomalous: { (anomalous[$0], masks?[$0] ?? nil) }),
                progress: progress)
    }

    /// Fits on the images of `source`.
    ///
    /// Each image is cut into its regions (`Tiling`: the whole image, or square tiles), and
    /// each region is resized (bilinear, Pillow's rule) to `imageSize²`; masks by nearest
    /// neighbour (non-zero = defect; nil = the whole image). A tile of a known anomaly whose
    /// mask holds no defect pixel is left out. With the `bgad` variant, each anomalous
    /// region enters training `realRepeats` times, and `rpagPerAnomaly` RPAG samples per
    /// anomalous region are pasted on normal regions chosen with the seed, on their
    /// foreground (`foreground`); samples with an empty mask are skipped. The other variants
    /// ignore the anomalies. Features come from the backbone in batches of `featureBatch`
    /// and are kept once, as float32 training rows (`TrainingRows`); then the BGAD model is
    /// trained and calibrated at `imageSize²`. The backbone is read from `weights`, or, when
    /// that is empty, the one the detector already holds is reused. On failure or
    /// cancellation (`progress` returned false → `.cancelled`) the detector keeps its
    /// previous state.
    public func fit(_ source: Source, progress: ((TrainingProgress) -> Bool)? = nil) throws(BGADError) {
        guard source.normalCount >= 1 else { throw .invalid("fit needs at least one normal image") }
        let backbone = try fitBackbone()
        let c = configuration, s = c.imageSize
        let rows = TrainingRows(shapes: try featureShapes(backbone))
        var channels: [Int] = []
        for level in rows.levels { channels.append(level.channels) }

        // Normal regions, streamed through the backbone into the rows.
        var normalRegions: [(image: Int, rect: Tiling.Rect)] = []
        try streamFeatures(backbone, into: rows) { add throws(BGADError) in
            for i in 0..<source.normalCount {
                let im = try source.normal(i)
                try Detector.checkImage(im, "normal image \(i)")
                for r in try Tiling.regions(height: im.height, width: im.width, size: s, mode: c.tiling, name: "normal image \(i)") {
                    normalRegions.append((i, r))
                    let unit = try Detector.region(im, r, size: s)
                    try add({ dst in Detector.copyRGB(unit, into: dst) }, nil, "normal image \(i)")
                }
            }
        }
        rows.normalCount = rows.count

        // Known anomalies (bgad only): real regions repeated, then RPAG samples.
        if c.training.variant.usesAnomalies, source.anomalousCount > 0 {
            var anomalies: [Image] = [], anomalyMasks: [[UInt8]] = []
            for i in 0..<source.anomalousCount {
                let (im, mask) = try source.anomalous(i)
                try Detector.checkImage(im, "anomalous image \(i)")
                if let mask {
                    try Detector.checkImage(mask, "mask \(i)")
                    guard mask.channels == 1 else { throw .invalid("mask \(i) must have 1 channel, got \(mask.channels)") }
                    guard mask.height == im.height, mask.width == im.width else {
                        throw .invalid("mask \(i) is \(mask.height)×\(mask.width) but its image is \(im.height)×\(im.width)")
                    }
                }
                let regions = try Tiling.regions(height: im.height, width: im.width, size: s, mode: c.tiling, name: "anomalous image \(i)")
                var kept = 0
                for r in regions {
                    var m = [UInt8](repeating: 1, count: s * s)
                    if let mask {
                        let binary = Detector.crop(mask, r).pixels.map { $0 != 0 ? UInt8(1) : 0 }
                        try binary.withUnsafeBufferPointer { src throws(BGADError) in
                            try m.withUnsafeMutableBufferPointer { dst throws(BGADError) in
                                try resizeNearest(src.baseAddress!, height: r.height, width: r.width, channels: 1,
                                                  into: dst.baseAddress!, height: s, width: s)
                            }
                        }
                        if !m.contains(1) { continue }
                    }
                    anomalies.append(try Detector.region(im, r, size: s))
                    anomalyMasks.append(m)
                    kept += 1
                }
                guard kept > 0 else {
                    throw .invalid("mask \(i) has no defect pixel at the model's image size \(s)×\(s)")
                }
            }
            var trainImages: [Image] = [], trainMasks: [[UInt8]] = []
            for (a, m) in zip(anomalies, anomalyMasks) {
                for _ in 0..<c.realRepeats { trainImages.append(a); trainMasks.append(m) }
            }
            if c.rpagPerAnomaly > 0 {
                // Two streams of one seed: RPAG's is tagged so it does not repeat the picks'.
                var generator = RPAG(seed: c.training.seed ^ Detector.rpagStreamTag)
                var pick = SeededRandom(seed: c.training.seed)
                var cached: (index: Int, image: Image)? = nil
                for (a, m) in zip(anomalies, anomalyMasks) {
                    for _ in 0..<c.rpagPerAnomaly {
                        let (i, r) = normalRegions[pick.below(normalRegions.count)]
                        if cached?.index != i { cached = (i, try source.normal(i)) }
                        var n = try Detector.region(cached!.image, r, size: s), anomaly = a
                        if n.channels != anomaly.channels { n = n.rgb(); anomaly = anomaly.rgb() }
                        let sample = try generator.generate(normal: n, anomaly: anomaly, anomalyMask: m, foreground: nil,
                                                            foregroundMode: c.foreground)
                        guard sample.mask.contains(where: { $0 != 0 }) else { continue }
                        trainImages.append(sample.image)
                        trainMasks.append(sample.mask)
                    }
                }
            }
            try streamFeatures(backbone, into: rows) { add throws(BGADError) in
                for (k, (im, m)) in zip(trainImages, trainMasks).enumerated() {
                    try add({ dst in Detector.copyRGB(im, into: dst) }, m, "anomalous training image \(k)")
                }
            }
        }

        let model = try BGADModel(channels: channels, configuration: c.training)
        try Detector.engineLock.locked { () throws(BGADError) in
            try model.fit(rows: rows, calibrationHeight: s, calibrationWidth: s, progress: progress)
        }
        try lock.locked { () throws(BGADError) in fitted = Fitted(backbone: backbone, model: model) }
    }

    /// The backbone to fit with: read from `weights`, else the one already held.
    private func fitBackbone() throws(BGADError) -> DetectorBackbone {
        let c = configuration
        if !c.weights.isEmpty { return try DetectorBackbones.load(name: c.backbone, path: c.weights) }
        if let b = state?.backbone { return b }
        throw .invalid("fit needs the backbone's weight file: set \"weights\" to the path of the engine's converted \(c.backbone) weights")
    }

    // MARK: - Predict

    /// Scores images of any size (gray or RGB): image score, decision and, when `maps`,
    /// the anomaly map at each image's own size (tiled images: see `Tiling`). A batch and
    /// the same images one by one give identical numbers.
    public func predict(_ images: [Image], maps: Bool = true) throws(BGADError) -> [DetectorPrediction] {
        for (i, im) in images.enumerated() { try Detector.checkImage(im, "image \(i)") }
        var out: [DetectorPrediction] = []
        out.reserveCapacity(images.count)
        var current: [Float] = []
        try score(count: images.count, shape: { i in (images[i].height, images[i].width, images[i].channels) },
                  pixels: { i, body throws(BGADError) in
                      try images[i].pixels.withUnsafeBufferPointer { p throws(BGADError) in try body(p.baseAddress!) }
                  },
                  map: { i, body throws(BGADError) in
                      guard maps else { try body(nil); return }
                      if current.count != images[i].height * images[i].width {
                          current = [Float](repeating: 0, count: images[i].height * images[i].width)
                      }
                      try current.withUnsafeMutableBufferPointer { m throws(BGADError) in try body(m.baseAddress!) }
                  },
                  emit: { i, score, decision throws(BGADError) in
                      out.append(DetectorPrediction(score: score, isAnomalous: decision, map: maps ? current : nil,
                                                    height: images[i].height, width: images[i].width))
                      current = []
                  })
        return out
    }

    /// As `predict(_:maps:)` on borrowed images, writing into caller memory: `scores[i]`,
    /// `decisions[i]` (1 = anomalous) when given, and `maps[i]` (`height_i × width_i`
    /// floats) when `maps` and its entry are non-nil.
    public func predict(_ images: [ImageView], scores: UnsafeMutablePointer<Double>, decisions: UnsafeMutablePointer<Int32>?,
                        maps: [UnsafeMutablePointer<Float>?]?) throws(BGADError) {
        for (i, v) in images.enumerated() {
            try Detector.checkSize(v.height, v.width, v.channels, "image \(i)")
        }
        if let maps, maps.count != images.count { throw .invalid("maps: \(maps.count) entries for \(images.count) images") }
        try score(count: images.count, shape: { i in (images[i].height, images[i].width, images[i].channels) },
                  pixels: { i, body throws(BGADError) in try body(images[i].pixels) },
                  map: { i, body throws(BGADError) in try body(maps?[i] ?? nil) },
                  emit: { i, score, decision throws(BGADError) in
                      scores[i] = score
                      decisions?[i] = decision ? 1 : 0
                  })
    }

    /// The scoring pipeline shared by both `predict`s. Every image is cut into its regions
    /// (`Tiling`); batches of `featureBatch` regions are resized to the model size, run
    /// through the backbone and the model. An image's map is written, region by region,
    /// into the buffer `map(i, body)` lends `body` (nil = no map; it must lend the same
    /// buffer for every region of an image): the whole image's map resized to its size, or
    /// each tile's resized to the tile and merged by maximum. The image's score (the maximum
    /// over its regions) and decision go to `emit` after its last region.
    private func score(
        count: Int, shape: (Int) -> (Int, Int, Int),
        pixels: (Int, (UnsafePointer<UInt8>) throws(BGADError) -> Void) throws(BGADError) -> Void,
        map: (Int, (UnsafeMutablePointer<Float>?) throws(BGADError) -> Void) throws(BGADError) -> Void,
        emit: (Int, Double, Bool) throws(BGADError) -> Void
    ) throws(BGADError) {
        let f = try requireFitted()
        if count == 0 { return }
        let s = configuration.imageSize, plane = s * s
        let threshold = Double(f.model.calibration!.imageThreshold)
        // Every region of every image, in order.
        var units: [(image: Int, rect: Tiling.Rect, whole: Bool)] = []
        for i in 0..<count {
            let (h, w, _) = shape(i)
            let regions = try Tiling.regions(height: h, width: w, size: s, mode: configuration.tiling, name: "image \(i)")
            for r in regions { units.append((i, r, regions.count == 1 && r.height == h && r.width == w)) }
        }
        let batch = configuration.featureBatch
        var mapBuffer = [Float](repeating: 0, count: min(batch, units.count) * plane)
        var scores = [Double](repeating: 0, count: min(batch, units.count))
        var tileMap: [Float] = [], crop: [UInt8] = []
        var best = -Double.infinity
        var start = 0
        while start < units.count {
            let n = min(batch, units.count - start)
            let feats = try features(f.backbone, count: n) { j, dst throws(BGADError) in
                let u = units[start + j]
                let (h, w, c) = shape(u.image)
                try pixels(u.image) { p throws(BGADError) in
                    if u.whole {
                        try Detector.resizeRGB(p, height: h, width: w, channels: c, size: s, into: dst)
                        return
                    }
                    let r = u.rect
                    if crop.count < r.height * r.width * c { crop = [UInt8](repeating: 0, count: r.height * r.width * c) }
                    try crop.withUnsafeMutableBufferPointer { b throws(BGADError) in
                        for y in 0..<r.height {
                            (b.baseAddress! + y * r.width * c).update(from: p + ((r.y + y) * w + r.x) * c, count: r.width * c)
                        }
                        try Detector.resizeRGB(b.baseAddress!, height: r.height, width: r.width, channels: c, size: s, into: dst)
                    }
                }
            }
            try mapBuffer.withUnsafeMutableBufferPointer { m throws(BGADError) in
                // Maps at the model size and the model's image scores −log(min Σ): the map's
                // maximum in the same order, without its ties where the map saturates.
                try scores.withUnsafeMutableBufferPointer { sc throws(BGADError) in
                    try withExtendedLifetime(feats) { () throws(BGADError) in
                        try Detector.engineLock.locked { () throws(BGADError) in
                            try f.model.score(feats.maps, height: s, width: s, maps: m.baseAddress!, imageScores: sc.baseAddress!)
                        }
                    }
                }
                for j in 0..<n {
                    let u = units[start + j]
                    let unitMap = UnsafePointer(m.baseAddress! + j * plane)
                    let first = start + j == 0 || units[start + j - 1].image != u.image
                    let last = start + j + 1 == units.count || units[start + j + 1].image != u.image
                    if first { best = -Double.infinity }
                    best = max(best, scores[j])
                    let (h, w, _) = shape(u.image)
                    try map(u.image) { dst throws(BGADError) in
                        guard let dst else { return }
                        if u.whole {
                            try self.resizeMap(unitMap, into: dst, height: h, width: w)
                            return
                        }
                        let r = u.rect
                        if first { dst.update(repeating: -.infinity, count: h * w) }
                        if tileMap.count < r.height * r.width { tileMap = [Float](repeating: 0, count: r.height * r.width) }
                        try tileMap.withUnsafeMutableBufferPointer { t throws(BGADError) in
                            try self.resizeMap(unitMap, into: t.baseAddress!, height: r.height, width: r.width)
                            for y in 0..<r.height {
                                let row = dst + (r.y + y) * w + r.x, src = t.baseAddress! + y * r.width
                                for x in 0..<r.width { row[x] = max(row[x], src[x]) }
                            }
                        }
                    }
                    if last { try emit(u.image, best, best > threshold) }
                }
            }
            start += n
        }
    }

    /// The anomaly map at `height × width` from the map at the model size (Pillow's bilinear,
    /// mode "F"; a copy when the sizes agree).
    private func resizeMap(_ map: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, height: Int, width: Int) throws(BGADError) {
        let s = configuration.imageSize
        try resizeBilinear(map, height: s, width: s, channels: 1, into: dst, height: height, width: width)
    }

    // MARK: - Images and features

    /// Checks an image's size and channel count before anything is allocated for it.
    static func checkSize(_ h: Int, _ w: Int, _ c: Int, _ name: String) throws(BGADError) {
        guard c == 1 || c == 3 else { throw .invalid("\(name): channels must be 1 (gray) or 3 (RGB), got \(c)") }
        guard h >= 1, w >= 1, h <= maximumImageSide, w <= maximumImageSide else {
            throw .invalid("\(name): size must lie between 1×1 and \(maximumImageSide)×\(maximumImageSide), got \(h)×\(w)")
        }
    }

    static func checkImage(_ im: Image, _ name: String) throws(BGADError) {
        try checkSize(im.height, im.width, im.channels, name)
        guard im.pixels.count == im.height * im.width * im.channels else {
            throw .invalid("\(name): \(im.pixels.count) samples do not fill \(im.height)×\(im.width)×\(im.channels)")
        }
    }

    /// `im` resized (bilinear) to `size²`, its channels kept.
    static func resized(_ im: Image, to size: Int) throws(BGADError) -> Image {
        var out = Image(height: size, width: size, channels: im.channels)
        try im.pixels.withUnsafeBufferPointer { src throws(BGADError) in
            try out.pixels.withUnsafeMutableBufferPointer { dst throws(BGADError) in
                try resizeBilinear(src.baseAddress!, height: im.height, width: im.width, channels: im.channels,
                                   into: dst.baseAddress!, height: size, width: size)
            }
        }
        return out
    }

    /// Writes `im` (already `size²`) as RGB into `dst`.
    static func copyRGB(_ im: Image, into dst: UnsafeMutablePointer<UInt8>) {
        im.pixels.withUnsafeBufferPointer { expandToRGB($0.baseAddress!, count: im.height * im.width, channels: im.channels, into: dst) }
    }

    /// Resizes an image to `size²` (bilinear) and writes it as RGB into `dst`.
    private static func resizeRGB(_ src: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int, size: Int,
                                  into dst: UnsafeMutablePointer<UInt8>) throws(BGADError) {
        if channels == 3 {
            try resizeBilinear(src, height: height, width: width, channels: 3, into: dst, height: size, width: size)
            return
        }
        // Gray: resized into the last third of the slot, then spread to RGB from the front.
        let plane = size * size
        let gray = dst + 2 * plane
        try resizeBilinear(src, height: height, width: width, channels: 1, into: gray, height: size, width: size)
        expandToRGB(gray, count: plane, channels: 1, into: dst)
    }

    /// Copies `count` pixels of 1 or 3 channels as RGB (gray replicated). `dst` may hold the
    /// gray source in its last third.
    private static func expandToRGB(_ src: UnsafePointer<UInt8>, count: Int, channels: Int, into dst: UnsafeMutablePointer<UInt8>) {
        if channels == 3 { dst.update(from: src, count: 3 * count); return }
        for p in 0..<count {
            let v = src[p]
            dst[3 * p] = v; dst[3 * p + 1] = v; dst[3 * p + 2] = v
        }
    }

    /// `(channels, grid height, grid width)` of every level at the model size.
    private func featureShapes(_ backbone: DetectorBackbone) throws(BGADError) -> [(channels: Int, height: Int, width: Int)] {
        let s = configuration.imageSize
        var shapes: [(channels: Int, height: Int, width: Int)] = []
        for st in configuration.strides {
            guard let c = backbone.network.channels(stride: st) else { throw .invalid("backbone '\(backbone.name)' has no level at stride \(st)") }
            let g = backbone.network.featureSize(height: s, width: s, stride: st)
            shapes.append((c, g.height, g.width))
        }
        return shapes
    }

    /// Streams images through the backbone into `rows`, `featureBatch` at a time: `body`
    /// calls `add(fill, mask, name)` once per image, `fill` writing it as `size² × 3` RGB
    /// bytes, `mask` its `size²` labels (nil = a normal image). Only one batch of
    /// features exists at a time.
    private func streamFeatures(
        _ backbone: DetectorBackbone, into rows: TrainingRows,
        _ body: ((_ fill: (UnsafeMutablePointer<UInt8>) throws(BGADError) -> Void, _ mask: [UInt8]?, _ name: String) throws(BGADError) -> Void) throws(BGADError) -> Void
    ) throws(BGADError) {
        let s = configuration.imageSize, slot = s * s * 3, batch = configuration.featureBatch
        let stack = FeatureStack(count: batch, shapes: try featureShapes(backbone))
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: batch * slot)
        defer { buffer.deallocate() }
        var pending: [(mask: [UInt8]?, name: String)] = []
        func flush() throws(BGADError) {
            if pending.isEmpty { return }
            let n = pending.count
            try Detector.engineLock.locked { () throws(BGADError) in
                try backbone.network.features(images: buffer, count: n, height: s, width: s, channels: 3,
                                              inputHeight: s, inputWidth: s, strides: configuration.strides,
                                              outputs: stack.levels)
            }
            let maps = stack.maps
            for (j, p) in pending.enumerated() {
                for (l, store) in rows.levels.enumerated() {
                    if let m = p.mask {
                        try m.withUnsafeBufferPointer { mb throws(BGADError) in
                            try store.append(maps[l], image: j, mask: mb.baseAddress!, maskHeight: s, maskWidth: s, label: 1,
                                             name: "\(p.name), features of level \(l)")
                        }
                    } else {
                        try store.append(maps[l], image: j, name: "\(p.name), features of level \(l)")
                    }
                }
            }
            pending.removeAll(keepingCapacity: true)
        }
        try body { fill, mask, name throws(BGADError) in
            try fill(buffer + pending.count * slot)
            pending.append((mask, name))
            if pending.count == batch { try flush() }
        }
        try flush()
    }

    /// Region `r` of `im` (cropped, channels kept).
    static func crop(_ im: Image, _ r: Tiling.Rect) -> Image {
        if r.y == 0, r.x == 0, r.height == im.height, r.width == im.width { return im }
        var out = Image(height: r.height, width: r.width, channels: im.channels)
        let c = im.channels
        for y in 0..<r.height {
            let from = ((r.y + y) * im.width + r.x) * c
            out.pixels.replaceSubrange(y * r.width * c..<(y + 1) * r.width * c, with: im.pixels[from..<(from + r.width * c)])
        }
        return out
    }

    /// Region `r` of `im` resized (bilinear) to `size²`, channels kept.
    static func region(_ im: Image, _ r: Tiling.Rect, size: Int) throws(BGADError) -> Image {
        try resized(crop(im, r), to: size)
    }

    /// Backbone features of `count` images at the model size, in batches of `featureBatch`;
    /// `fill(i, slot)` writes image i as `size² × 3` RGB bytes.
    private func features(_ backbone: DetectorBackbone, count: Int,
                          fill: (Int, UnsafeMutablePointer<UInt8>) throws(BGADError) -> Void) throws(BGADError) -> FeatureStack {
        let s = configuration.imageSize, slot = s * s * 3
        let shapes = try featureShapes(backbone)
        let stack = FeatureStack(count: count, shapes: shapes)
        // The network runs every image in bands with fixed boundaries (`fixedBands`, set by
        // `DetectorBackbones.make`), so an image's features do not depend on its batch. The
        // process-wide engine lock keeps another call from changing the BLAS thread count
        // while the backbone reads it.
        let per = shapes.map { $0.channels * $0.height * $0.width }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: min(configuration.featureBatch, count) * slot)
        defer { buffer.deallocate() }
        var start = 0
        while start < count {
            let n = min(configuration.featureBatch, count - start)
            try Detector.engineLock.locked { () throws(BGADError) in
                for j in 0..<n { try fill(start + j, buffer + j * slot) }
                try backbone.network.features(images: buffer, count: n, height: s, width: s, channels: 3,
                                              inputHeight: s, inputWidth: s, strides: configuration.strides,
                                              outputs: stack.levels.indices.map { stack.levels[$0] + start * per[$0] })
            }
            start += n
        }
        return stack
    }
}

/// Feature maps of `count` images, one owned `(count, C, h, w)` buffer per level.
final class FeatureStack {
    let count: Int
    let shapes: [(channels: Int, height: Int, width: Int)]
    let levels: [UnsafeMutablePointer<Float>]

    init(count: Int, shapes: [(channels: Int, height: Int, width: Int)]) {
        self.count = count
        self.shapes = shapes
        levels = shapes.map { .allocate(capacity: max(1, count * $0.channels * $0.height * $0.width)) }
    }

    deinit { for p in levels { p.deallocate() } }

    /// The levels as `FeatureMaps` (valid while the stack lives).
    var maps: [FeatureMaps] {
        zip(levels, shapes).map { p, s in FeatureMaps(data: p, count: count, channels: s.channels, height: s.height, width: s.width) }
    }
}
