/// Geometric augmentations: each moves the image and its defect mask together.
///
/// Conventions: pixel centres sit at integer coordinates; `(x, y)` = (column, row) with y
/// pointing down. Continuous warps are computed backwards (for every output pixel, the
/// source position it comes from) and sampled bilinearly for the image and by nearest
/// neighbour for the mask, with the SAME source positions, so the mask stays exact. The
/// border is mirrored without repeating the edge pixel (OpenCV's BORDER_REFLECT_101, the
/// albumentations default), for image and mask alike.

#if canImport(Glibc)
import Glibc
#endif

/// The image operations RPAG's augmentations are made of, with explicit parameters (an
/// `Augmentation` is one operation of the pool; `RPAG.apply` draws its parameters and calls
/// these). Geometric ones transform an image and its mask together, photometric ones the
/// image only.
public enum ImageOps {}

/// `ImageOps` under its former name.
@available(*, deprecated, renamed: "ImageOps")
public typealias Augment = ImageOps

extension ImageOps {
    /// Mirrors index `i` into `0..<n` (BORDER_REFLECT_101: …, 2, 1, | 0, 1, …, n-1 | n-2, …).
    @inlinable @inline(__always)
    static func reflect101(_ i: Int, _ n: Int) -> Int {
        if i >= 0 && i < n { return i }
        if n == 1 { return 0 }
        let period = 2 * n - 2
        var j = i % period
        if j < 0 { j += period }
        return j < n ? j : period - j
    }

    /// Rotates by `k` quarter turns counter-clockwise (as `numpy.rot90(a, k)`); a
    /// non-square image swaps its height and width for odd `k`.
    public static func rotate90(_ image: Image, _ mask: [UInt8], k: Int) -> (Image, [UInt8]) {
        let k = ((k % 4) + 4) % 4
        if k == 0 { return (image, mask) }
        let h = image.height, w = image.width
        let (oh, ow) = k == 2 ? (h, w) : (w, h)
        // Source pixel of output (i, j).
        return permute(image, mask, outHeight: oh, outWidth: ow) { i, j in
            switch k {
            case 1: return (j, w - 1 - i)          // out[i][j] = a[j][w-1-i]
            case 2: return (h - 1 - i, w - 1 - j)
            default: return (h - 1 - j, i)         // k = 3
            }
        }
    }

    /// Flips: `code` 1 = horizontal (left-right), 0 = vertical (up-down), -1 = both
    /// (OpenCV's flip codes, as albumentations' `Flip`).
    public static func flip(_ image: Image, _ mask: [UInt8], code: Int) -> (Image, [UInt8]) {
        let h = image.height, w = image.width
        return permute(image, mask, outHeight: h, outWidth: w) { i, j in
            switch code {
            case 1: return (i, w - 1 - j)
            case 0: return (h - 1 - i, j)
            default: return (h - 1 - i, w - 1 - j)
            }
        }
    }

    /// Swaps rows and columns (`out[i][j] = a[j][i]`).
    public static func transpose(_ image: Image, _ mask: [UInt8]) -> (Image, [UInt8]) {
        permute(image, mask, outHeight: image.width, outWidth: image.height) { i, j in (j, i) }
    }

    /// Exact pixel permutation: output `(i, j)` takes input `source(i, j)`.
    @inline(__always)
    static func permute(_ image: Image, _ mask: [UInt8], outHeight oh: Int, outWidth ow: Int,
                        _ source: (Int, Int) -> (Int, Int)) -> (Image, [UInt8]) {
        let w = image.width, c = image.channels
        return transform(image, mask, outHeight: oh, outWidth: ow) { src, m, dst, dm in
            for i in 0..<oh {
                for j in 0..<ow {
                    let (si, sj) = source(i, j)
                    let s = si * w + sj, d = i * ow + j
                    dm[d] = m[s]
                    for ch in 0..<c { dst[d * c + ch] = src[s * c + ch] }
                }
            }
        }
    }

    /// A new `outHeight × outWidth` image (the input's channels) and mask, filled by `body`
    /// from the input's samples and mask: the buffers of every geometric operation.
    @inline(__always)
    static func transform(_ image: Image, _ mask: [UInt8], outHeight oh: Int, outWidth ow: Int,
                          _ body: (_ src: UnsafeBufferPointer<UInt8>, _ mask: UnsafeBufferPointer<UInt8>,
                                   _ dst: UnsafeMutableBufferPointer<UInt8>, _ dstMask: UnsafeMutableBufferPointer<UInt8>) -> Void)
        -> (Image, [UInt8]) {
        var out = Image(height: oh, width: ow, channels: image.channels)
        var outMask = [UInt8](repeating: 0, count: oh * ow)
        image.pixels.withUnsafeBufferPointer { src in
            mask.withUnsafeBufferPointer { m in
                out.pixels.withUnsafeMutableBufferPointer { dst in
                    outMask.withUnsafeMutableBufferPointer { dm in body(src, m, dst, dm) }
                }
            }
        }
        return (out, outMask)
    }

    /// Affine warp about the image centre `((w-1)/2, (h-1)/2)`: rotate by `angle` degrees
    /// (counter-clockwise as displayed, OpenCV's `getRotationMatrix2D`), scale by `scale`,
    /// then shift by `(shiftX·w, shiftY·h)` pixels. A point `p` moves to
    /// `c + scale·R(angle)·(p − c) + shift`, with `R = [[cos, sin], [−sin, cos]]`.
    public static func shiftScaleRotate(_ image: Image, _ mask: [UInt8], shiftX: Double, shiftY: Double,
                                        scale: Double, angle: Double) -> (Image, [UInt8]) {
        let h = image.height, w = image.width
        let cx = Double(w - 1) / 2, cy = Double(h - 1) / 2
        let tx = shiftX * Double(w), ty = shiftY * Double(h)
        let a = angle * Double.pi / 180
        let cs = cos(a), sn = sin(a)
        // Inverse: p = c + R(angle)^T (q − c − t) / scale.
        var mapX = [Float](repeating: 0, count: h * w), mapY = mapX
        for y in 0..<h {
            for x in 0..<w {
                let u = (Double(x) - cx - tx) / scale, v = (Double(y) - cy - ty) / scale
                mapX[y * w + x] = Float(cx + cs * u - sn * v)
                mapY[y * w + x] = Float(cy + sn * u + cs * v)
            }
        }
        return remap(image, mask, mapX: mapX, mapY: mapY)
    }

    /// Barrel/pincushion distortion of a camera with focal lengths `(w, h)` and centre
    /// `((w-1)/2 + dx, (h-1)/2 + dy)`: output pixel `q` samples the source at
    /// `c + (q − c)(1 + k r² + k r⁴)`, `r` the normalised radius (OpenCV's
    /// `initUndistortRectifyMap` with `k1 = k2 = k`, as albumentations' OpticalDistortion).
    public static func opticalDistortion(_ image: Image, _ mask: [UInt8], k: Double, dx: Double, dy: Double) -> (Image, [UInt8]) {
        let h = image.height, w = image.width
        let fx = Double(w), fy = Double(h)
        let cx = Double(w - 1) / 2 + dx, cy = Double(h - 1) / 2 + dy
        var mapX = [Float](repeating: 0, count: h * w), mapY = mapX
        for y in 0..<h {
            let ny = (Double(y) - cy) / fy
            for x in 0..<w {
                let nx = (Double(x) - cx) / fx
                let r2 = nx * nx + ny * ny
                let f = 1 + k * r2 + k * r2 * r2
                mapX[y * w + x] = Float(cx + nx * f * fx)
                mapY[y * w + x] = Float(cy + ny * f * fy)
            }
        }
        return remap(image, mask, mapX: mapX, mapY: mapY)
    }

    /// Grid distortion: the image is cut into `stretchX.count` columns and
    /// `stretchY.count` rows of equal size; column `i` of the output shows a source strip
    /// whose width is proportional to `stretchX[i]` (all positive; the strips tile the
    /// whole source), likewise for rows. Piecewise linear and separable.
    public static func gridDistortion(_ image: Image, _ mask: [UInt8], stretchX: [Double], stretchY: [Double]) -> (Image, [UInt8]) {
        let h = image.height, w = image.width
        let xs = gridAxisMap(size: w, stretch: stretchX), ys = gridAxisMap(size: h, stretch: stretchY)
        var mapX = [Float](repeating: 0, count: h * w), mapY = mapX
        for y in 0..<h {
            for x in 0..<w {
                mapX[y * w + x] = xs[x]
                mapY[y * w + x] = ys[y]
            }
        }
        return remap(image, mask, mapX: mapX, mapY: mapY)
    }

    /// Source coordinate of every output index along one axis of `gridDistortion`.
    static func gridAxisMap(size: Int, stretch: [Double]) -> [Float] {
        let n = stretch.count
        let total = stretch.reduce(0, +)
        var bounds = [Double](repeating: 0, count: n + 1)
        for i in 0..<n { bounds[i + 1] = bounds[i] + stretch[i] / total * Double(size) }
        let cell = Double(size) / Double(n)
        var out = [Float](repeating: 0, count: size)
        for x in 0..<size {
            let t = Double(x) + 0.5  // continuous coordinate of the pixel centre
            let i = min(n - 1, Int(t / cell))
            let s = bounds[i] + (t - Double(i) * cell) * (bounds[i + 1] - bounds[i]) / cell
            out[x] = Float(s - 0.5)
        }
        return out
    }

    /// Samples `image` bilinearly and `mask` by nearest neighbour at `(mapX, mapY)` for
    /// every output pixel (row-major maps of the image's size), mirroring at the border.
    public static func remap(_ image: Image, _ mask: [UInt8], mapX: [Float], mapY: [Float]) -> (Image, [UInt8]) {
        let h = image.height, w = image.width, c = image.channels
        return transform(image, mask, outHeight: h, outWidth: w) { src, m, dst, dm in
            mapX.withUnsafeBufferPointer { mx in
                mapY.withUnsafeBufferPointer { my in
                    // The channel count as a literal lets the compiler unroll the inner loop.
                    if c == 3 {
                        remapKernel(src, m, dst, dm, mx, my, h, w, 3)
                    } else {
                        remapKernel(src, m, dst, dm, mx, my, h, w, 1)
                    }
                }
            }
        }
    }

    @inline(__always)
    static func remapKernel(_ src: UnsafeBufferPointer<UInt8>, _ m: UnsafeBufferPointer<UInt8>,
                            _ dst: UnsafeMutableBufferPointer<UInt8>, _ dm: UnsafeMutableBufferPointer<UInt8>,
                            _ mapX: UnsafeBufferPointer<Float>, _ mapY: UnsafeBufferPointer<Float>,
                            _ h: Int, _ w: Int, _ c: Int) {
        for i in 0..<(h * w) {
            // Bounded so that a wild map can never trap the Int conversion.
            let sx = mapX[i].isFinite ? max(-1e6, min(1e6, mapX[i])) : 0
            let sy = mapY[i].isFinite ? max(-1e6, min(1e6, mapY[i])) : 0
            let fx0 = sx.rounded(.down), fy0 = sy.rounded(.down)
            let fx = sx - fx0, fy = sy - fy0
            let x0 = Int(fx0), y0 = Int(fy0)
            let inside = x0 >= 0 && x0 + 1 < w && y0 >= 0 && y0 + 1 < h
            let xa = inside ? x0 : reflect101(x0, w), xb = inside ? x0 + 1 : reflect101(x0 + 1, w)
            let ya = inside ? y0 : reflect101(y0, h), yb = inside ? y0 + 1 : reflect101(y0 + 1, h)
            let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
            let p00 = (ya * w + xa) * c, p01 = (ya * w + xb) * c, p10 = (yb * w + xa) * c, p11 = (yb * w + xb) * c
            for ch in 0..<c {
                let v = w00 * Float(src[p00 + ch]) + w01 * Float(src[p01 + ch])
                    + w10 * Float(src[p10 + ch]) + w11 * Float(src[p11 + ch])
                dst[i * c + ch] = UInt8(min(255, max(0, v + 0.5)))
            }
            // Nearest: the closer of the two neighbours on each axis (ties go up).
            let nx = fx < 0.5 ? xa : xb, ny = fy < 0.5 ? ya : yb
            dm[i] = m[ny * w + nx]
        }
    }
}
