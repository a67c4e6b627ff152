/// How a `Detector` covers an image of any shape with the square model input.
///
/// An image is either resized as a whole to `imageSize²` (squashed) or covered by square
/// tiles of side `T = min(short side, imageSize)` image pixels — at the model resolution
/// when the image is large enough, so a small defect keeps its pixels — placed on a grid
/// whose neighbours overlap by at least a quarter of a tile, the last tile of each row and
/// column flush with the border. Each tile is scored on its own; the anomaly map is stitched
/// back at the image's size (the maximum where tiles overlap) and the image score is the
/// maximum over its tiles. Training tiles its images the same way (RPAG pastes onto tiles).
///
/// `auto` tiles an image when its long side exceeds `maximumAspect` times its short side
/// (a strip: squashing would stretch it), or when its short side exceeds `maximumScale`
/// times `imageSize` (squashing would shrink it more than that).
public enum Tiling {
    /// The `tiling` setting.
    public enum Mode: String, Sendable, CaseIterable {
        /// Tile strips and large images (the rule above).
        case auto
        /// Tile every image.
        case on
        /// Resize every image as a whole (the behaviour before tiling existed).
        case off
    }

    /// `auto` tiles images whose long side is more than this many times their short side.
    public static let maximumAspect = 2
    /// `auto` tiles images whose short side is more than this many model inputs.
    public static let maximumScale = 4
    /// Most tiles one image may be cut into (more is refused, naming the image).
    public static let maximumTiles = 1 << 14

    /// A rectangle of an image, in pixels.
    public struct Rect: Equatable, Sendable {
        /// First row and column.
        public var y: Int, x: Int
        /// Rows and columns.
        public var height: Int, width: Int

        /// A rectangle; see the properties.
        public init(y: Int, x: Int, height: Int, width: Int) {
            self.y = y; self.x = x; self.height = height; self.width = width
        }
    }

    /// Whether `mode` tiles an image of `height × width` at model input side `size`.
    public static func tiles(height: Int, width: Int, size: Int, mode: Mode) -> Bool {
        switch mode {
        case .off: return false
        case .on: return true
        case .auto:
            let short = min(height, width), long = max(height, width)
            return long > maximumAspect * short || short > maximumScale * size
        }
    }

    /// The regions of an image the detector scores: the whole image (one rectangle) when it
    /// is not tiled, else the tiles in row-major order. Throws naming `name` when the image
    /// would need more than `maximumTiles` tiles.
    public static func regions(height: Int, width: Int, size: Int, mode: Mode, name: String) throws(BGADError) -> [Rect] {
        guard tiles(height: height, width: width, size: size, mode: mode) else {
            return [Rect(y: 0, x: 0, height: height, width: width)]
        }
        let side = min(height, width, size)
        let ys = starts(length: height, tile: side), xs = starts(length: width, tile: side)
        guard ys.count * xs.count <= maximumTiles else {
            throw .invalid("\(name): a \(height)×\(width) image needs \(ys.count * xs.count) tiles of \(side)×\(side), "
                + "more than \(maximumTiles); crop or resize it, or set tiling to \"off\"")
        }
        var out: [Rect] = []
        out.reserveCapacity(ys.count * xs.count)
        for y in ys { for x in xs { out.append(Rect(y: y, x: x, height: side, width: side)) } }
        return out
    }

    /// First pixels of tiles of `tile` pixels covering `length`: evenly spread, at most
    /// `tile − tile/4` apart (overlap ≥ a quarter tile), the first at 0 and the last at
    /// `length − tile`.
    public static func starts(length: Int, tile: Int) -> [Int] {
        if length <= tile { return [0] }
        let stride = max(1, tile - tile / 4)
        let n = 1 + (length - tile + stride - 1) / stride
        return (0..<n).map { $0 * (length - tile) / (n - 1) }
    }
}
