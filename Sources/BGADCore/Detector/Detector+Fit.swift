/// Fitting a detector: images streamed one at a time through the backbone into training
/// rows, known anomalies repeated and multiplied by RPAG, then the BGAD model trained.

extension Detector {
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
}
