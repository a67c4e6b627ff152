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
        for i in 0..<(count * per) where !data[i].isFinite {
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
