/// The data path from per-image feature maps to the row vectors the flows consume.
///
/// Feature maps arrive as the user's arrays: per level, `N` maps of shape `(C, H, W)`,
/// row-major (numpy's `(N, C, H, W)`). Each spatial position is one feature vector; the
/// vectors of a set of images are ordered `(image, h, w)` (as the authors'
/// `permute(0, 2, 3, 1).reshape(-1, C)`), with the positional condition row `h·W + w`.

/// A borrowed stack of feature maps of one level: `count` maps of `channels × height × width`.
public struct FeatureMaps {
    /// First float of map 0 (row-major `(count, channels, height, width)`).
    public var data: UnsafePointer<Float>
    /// Number of images `N`.
    public var count: Int
    /// Channels `C` (the feature vector length).
    public var channels: Int
    /// Grid height `H`.
    public var height: Int
    /// Grid width `W`.
    public var width: Int

    /// Wraps a caller-owned buffer of `count · channels · height · width` floats.
    public init(data: UnsafePointer<Float>, count: Int, channels: Int, height: Int, width: Int) {
        self.data = data
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Positions per map, `H · W`.
    public var positions: Int { height * width }

    /// Throws unless every value is finite; the message names `name`, the image and channel.
    public func requireFinite(_ name: String) throws(BGADError) {
        let per = channels * positions
        if let i = firstNonFinite(data, count: count * per) {
            let img = i / per, c = (i % per) / positions
            throw .invalid("\(name): image \(img), channel \(c) holds \(data[i].isNaN ? "NaN" : "an infinite value")")
        }
    }

    /// Writes the `positions` vectors of image `image` as rows of `rows` (`H·W × C`,
    /// ordered `(h, w)`): a transposition of the image's `(C, H·W)` block.
    public func transposeImage(_ image: Int, into rows: UnsafeMutablePointer<Float>) {
        let p = positions, c = channels
        let src = data + image * c * p
        // Blocked over positions so both the reads and the writes stay in cache.
        let block = 64
        var p0 = 0
        while p0 < p {
            let p1 = min(p0 + block, p)
            for ch in 0..<c {
                let s = src + ch * p
                for q in p0..<p1 { rows[q * c + ch] = s[q] }
            }
            p0 = p1
        }
    }
}

/// Downsamples a binary mask `(height, width)` to `(toHeight, toWidth)` by nearest
/// neighbour (PyTorch `F.interpolate(mode='nearest')`): vector `(h, w)` of a level is
/// abnormal iff the mask pixel it samples is.
public func downsampleMaskNearest(
    _ mask: UnsafePointer<UInt8>, height: Int, width: Int,
    toHeight: Int, toWidth: Int, into out: UnsafeMutablePointer<UInt8>
) {
    for y in 0..<toHeight {
        let sy = nearestSourceIndex(y, inSize: height, outSize: toHeight)
        for x in 0..<toWidth {
            let sx = nearestSourceIndex(x, inSize: width, outSize: toWidth)
            out[y * toWidth + x] = mask[sy * width + sx] != 0 ? 1 : 0
        }
    }
}

/// Sizes of the chunks a shuffled batch of `total` vectors is cut into:
/// `k = max(1, round(total / chunk))` chunks of near-equal size (they differ by at most 1),
/// so every vector is used once per sub-epoch and no chunk is a tiny remainder.
/// (The authors drop the remainder `total mod 4096`, so a small last batch trains nothing.)
public func chunkBounds(total: Int, chunk: Int) -> [Range<Int>] {
    if total == 0 { return [] }
    let k = max(1, (total + chunk / 2) / chunk)
    var out: [Range<Int>] = []
    out.reserveCapacity(k)
    var start = 0
    for i in 0..<k {
        let end = (total * (i + 1)) / k
        out.append(start..<end)
        start = end
    }
    return out
}

/// The training vectors of one level: every image's `H·W` vectors as rows `(image, h, w) ×
/// C` (the order the trainer gathers from) with one label per row (1 = abnormal).
///
/// Rows live in blocks of whole images (about 16 MB each), allocated as images arrive, so
/// the store grows without ever copying itself and holds each vector once: a fit keeps
/// one float32 copy of its features, not the backbone's maps plus their transposition.
public final class RowStore {
    /// Feature length `C`.
    public let channels: Int
    /// Grid `H × W` of the level.
    public let height: Int, width: Int
    /// Images per block.
    let imagesPerBlock: Int
    private var blocks: [UnsafeMutablePointer<Float>] = []
    /// One label per row (0 normal, 1 abnormal).
    private(set) var labels: [UInt8] = []
    /// Images stored.
    public private(set) var count = 0

    /// An empty store of vectors of length `channels` on an `height × width` grid.
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        imagesPerBlock = max(1, (1 << 22) / max(1, channels * height * width))
    }

    deinit { for b in blocks { b.deallocate() } }

    /// Positions per image, `H · W`.
    public var positions: Int { height * width }

    /// Row `v` (`image · positions + position`).
    @inline(__always)
    func row(_ v: Int) -> UnsafePointer<Float> {
        let per = imagesPerBlock * positions
        return UnsafePointer(blocks[v / per] + (v % per) * channels)
    }

    /// The `positions` labels of image `i`.
    public func labelsOfImage(_ i: Int) -> ArraySlice<UInt8> { labels[(i * positions)..<((i + 1) * positions)] }

    /// The `positions × channels` rows of image `i` (contiguous: a block holds whole images).
    public func image(_ i: Int) -> UnsafePointer<Float> { row(i * positions) }

    /// Room for one more image; returns its first row.
    private func nextSlot() -> UnsafeMutablePointer<Float> {
        let inBlock = count % imagesPerBlock
        if inBlock == 0 { blocks.append(.allocate(capacity: imagesPerBlock * positions * channels)) }
        count += 1
        return blocks[blocks.count - 1] + inBlock * positions * channels
    }

    /// Appends image `image` of `maps` (same channels and grid), transposed to rows, with
    /// the labels of `mask` (`maskHeight × maskWidth`, non-zero = abnormal, sampled by
    /// nearest neighbour as `downsampleMaskNearest`) or all `label` when `mask` is nil.
    /// Throws, storing nothing, when a value is not finite.
    public func append(_ maps: FeatureMaps, image: Int, mask: UnsafePointer<UInt8>? = nil, maskHeight: Int = 0,
                       maskWidth: Int = 0, label: UInt8 = 0, name: String) throws(BGADError) {
        precondition(maps.channels == channels && maps.height == height && maps.width == width)
        let per = channels * positions, src = maps.data + image * per
        if let k = firstNonFinite(src, count: per) {
            throw .invalid("\(name): channel \(k / positions) holds \(src[k].isNaN ? "NaN" : "an infinite value")")
        }
        maps.transposeImage(image, into: nextSlot())
        appendLabels(mask: mask, maskHeight: maskHeight, maskWidth: maskWidth, label: label)
    }

    /// Appends a copy of stored image `i`'s rows with new labels (see `append`).
    public func appendCopy(of i: Int, mask: UnsafePointer<UInt8>? = nil, maskHeight: Int = 0, maskWidth: Int = 0,
                           label: UInt8 = 0) {
        let src = image(i)
        nextSlot().update(from: src, count: positions * channels)
        appendLabels(mask: mask, maskHeight: maskHeight, maskWidth: maskWidth, label: label)
    }

    private func appendLabels(mask: UnsafePointer<UInt8>?, maskHeight: Int, maskWidth: Int, label: UInt8) {
        let start = labels.count
        labels.append(contentsOf: repeatElement(label, count: positions))
        if let mask {
            labels.withUnsafeMutableBufferPointer { l in
                downsampleMaskNearest(mask, height: maskHeight, width: maskWidth, toHeight: height, toWidth: width,
                                      into: l.baseAddress! + start)
            }
        }
    }
}

/// What the trainer trains on: per level a `RowStore` holding the normal images first
/// (`normalCount`), then the anomalous ones. Built from a `TrainingSet`, or image by image
/// by a caller that never holds every image's maps (the `Detector`).
public final class TrainingRows {
    /// One store per level (same image count on every level once filled).
    public let levels: [RowStore]
    /// How many of the first images are normal (the rest are anomalous).
    public var normalCount: Int

    /// Empty stores for levels of `shapes` (channels, grid height, grid width).
    public init(shapes: [(channels: Int, height: Int, width: Int)]) {
        levels = shapes.map { RowStore(channels: $0.channels, height: $0.height, width: $0.width) }
        normalCount = 0
    }

    /// Images stored (normal + anomalous).
    public var count: Int { levels.first?.count ?? 0 }
    /// Anomalous images stored.
    public var anomalousCount: Int { count - normalCount }

    /// The rows of a validated `TrainingSet` (anomalies only when `withAnomalies`), as the
    /// trainer always laid them out: normal images, then anomalous ones labelled by their masks.
    convenience init(_ data: TrainingSet, withAnomalies: Bool) throws(BGADError) {
        self.init(shapes: data.normal.map { ($0.channels, $0.height, $0.width) })
        for (l, maps) in data.normal.enumerated() {
            for i in 0..<maps.count { try levels[l].append(maps, image: i, name: "normal features, level \(l), image \(i)") }
        }
        normalCount = data.normalCount
        guard withAnomalies else { return }
        for (l, maps) in data.anomalous.enumerated() {
            for i in 0..<maps.count {
                let m = data.masks.map { $0 + i * data.maskHeight * data.maskWidth }
                try levels[l].append(maps, image: i, mask: m, maskHeight: data.maskHeight, maskWidth: data.maskWidth,
                                     label: 1, name: "anomalous features, level \(l), image \(i)")
            }
        }
    }
}
