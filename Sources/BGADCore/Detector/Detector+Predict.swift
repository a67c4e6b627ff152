/// Scoring images: regions (tiling) resized to the model size, features in batches, the
/// model's maps and scores, maps resized back and merged per image.

extension Detector {
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
