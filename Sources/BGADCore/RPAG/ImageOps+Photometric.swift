/// Photometric augmentations: they change pixel values only, never the defect mask.
/// Every result is rounded to the nearest integer and clamped to `0...255`.

#if canImport(Glibc)
import Glibc
#endif

extension ImageOps {
    @inlinable @inline(__always)
    static func clamp8(_ v: Float) -> UInt8 { UInt8(min(255, max(0, v + 0.5))) }

    /// Adds independent `N(0, sigma²)` noise to every sample (all channels), drawn from `rng`
    /// (inverse transform sampling on 65 536 quantiles, see `addNoise`), rounded and clamped.
    public static func gaussianNoise(_ image: Image, sigma: Double, rng: inout SeededRandom) -> Image {
        var out = image
        out.pixels.withUnsafeMutableBufferPointer { o in addNoise(o, Float(sigma), &rng) }
        return out
    }

    /// The image with an `r`-pixel mirrored border (BORDER_REFLECT_101) on every side,
    /// as `(h + 2r) × (w + 2r) × c` samples of type `T`.
    static func padded<T>(_ image: Image, _ r: Int, _ convert: (UInt8) -> T) -> [T] {
        let h = image.height, w = image.width, c = image.channels
        let pw = w + 2 * r
        var colIndex = [Int](repeating: 0, count: pw)
        for x in 0..<pw { colIndex[x] = reflect101(x - r, w) }
        var out = [T]()
        out.reserveCapacity((h + 2 * r) * pw * c)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<(h + 2 * r) {
                let row = reflect101(y - r, h) * w
                for x in 0..<pw {
                    let s = (row + colIndex[x]) * c
                    for ch in 0..<c { out.append(convert(src[s + ch])) }
                }
            }
        }
        return out
    }

    /// Adds `sd · z` to every sample, `z` standard normal, drawn by inverse transform
    /// sampling: 16 random bits pick one of the 65 536 equiprobable quantiles
    /// `Φ⁻¹((k + ½) / 65 536)` (tails cut at ±4.3σ; after rounding to 8 bits with σ ≤ 8
    /// this is indistinguishable from exact sampling), four samples per 64-bit draw.
    static func addNoise(_ o: UnsafeMutableBufferPointer<UInt8>, _ sd: Float, _ g: inout SeededRandom) {
        let n = o.count
        normalQuantiles.withUnsafeBufferPointer { q in
            var i = 0
            while i < n {
                var bits = g.next()
                for _ in 0..<4 where i < n {
                    o[i] = clamp8(Float(o[i]) + sd * q[Int(bits & 0xFFFF)])
                    bits >>= 16
                    i += 1
                }
            }
        }
    }

    /// `Φ⁻¹((k + ½) / 65 536)` for k = 0…65 535.
    static let normalQuantiles: [Float] = (0..<65536).map { Float(inverseNormalCDF((Double($0) + 0.5) / 65536)) }

    /// Φ⁻¹(p) for p in (0, 1): Acklam's rational approximation (relative error < 1.2e-9),
    /// refined by one Halley step on `erfc`.
    public static func inverseNormalCDF(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        var x: Double
        if p < 0.02425 {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p > 1 - 0.02425 {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        }
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// Correlates every channel with a `k × k` kernel (row-major, `k` odd), mirroring at
    /// the border (BORDER_REFLECT_101). Zero taps are skipped.
    public static func filter(_ image: Image, kernel: [Float], size k: Int) -> Image {
        precondition(k % 2 == 1 && kernel.count == k * k)
        let h = image.height, w = image.width, c = image.channels, r = k / 2
        let pad = padded(image, r) { Float($0) }
        let rowLen = (w + 2 * r) * c, outLen = w * c
        var taps: [(Int, Float)] = []  // (offset in the padded image, weight)
        for dy in 0..<k { for dx in 0..<k where kernel[dy * k + dx] != 0 { taps.append((dy * rowLen + dx * c, kernel[dy * k + dx])) } }
        var out = image
        var acc = [Float](repeating: 0, count: outLen)
        pad.withUnsafeBufferPointer { p in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                acc.withUnsafeMutableBufferPointer { a in
                    for y in 0..<h {
                        for i in 0..<outLen { a[i] = 0.5 }  // + 0.5: round half up when truncating
                        for (offset, weight) in taps {
                            let base = y * rowLen + offset
                            for i in 0..<outLen { a[i] += weight * p[base + i] }
                        }
                        let o = y * outLen
                        for i in 0..<outLen { dst[o + i] = UInt8(min(255, max(0, a[i]))) }
                    }
                }
            }
        }
        return out
    }

    /// Mean of the `k × k` neighbourhood (box blur).
    public static func boxBlur(_ image: Image, size k: Int) -> Image {
        filter(image, kernel: [Float](repeating: 1 / Float(k * k), count: k * k), size: k)
    }

    /// Median of the 3 × 3 neighbourhood of every channel (mirrored border), by a
    /// 19-comparison exchange network on the 9 values.
    public static func medianBlur3(_ image: Image) -> Image {
        let h = image.height, w = image.width, c = image.channels
        let pad = padded(image, 1) { $0 }
        let rowLen = (w + 2) * c, outLen = w * c
        var out = image
        pad.withUnsafeBufferPointer { p in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h {
                    let r0 = y * rowLen, r1 = r0 + rowLen, r2 = r1 + rowLen
                    for i in 0..<outLen {
                        var p0 = p[r0 + i], p1 = p[r0 + i + c], p2 = p[r0 + i + 2 * c]
                        var p3 = p[r1 + i], p4 = p[r1 + i + c], p5 = p[r1 + i + 2 * c]
                        var p6 = p[r2 + i], p7 = p[r2 + i + c], p8 = p[r2 + i + 2 * c]
                        @inline(__always) func sort(_ a: inout UInt8, _ b: inout UInt8) { let lo = min(a, b); b = max(a, b); a = lo }
                        sort(&p1, &p2); sort(&p4, &p5); sort(&p7, &p8)
                        sort(&p0, &p1); sort(&p3, &p4); sort(&p6, &p7)
                        sort(&p1, &p2); sort(&p4, &p5); sort(&p7, &p8)
                        sort(&p0, &p3); sort(&p5, &p8); sort(&p4, &p7)
                        sort(&p3, &p6); sort(&p1, &p4); sort(&p2, &p5)
                        sort(&p4, &p7); sort(&p4, &p2); sort(&p6, &p4)
                        sort(&p4, &p2)
                        dst[y * outLen + i] = p4
                    }
                }
            }
        }
        return out
    }

    /// The normalised kernel of a straight motion streak of length `k` (odd) through the
    /// kernel centre at `angle` radians: the cells the segment passes through, equal weights.
    public static func motionKernel(size k: Int, angle: Double) -> [Float] {
        var kernel = [Float](repeating: 0, count: k * k)
        let r = Double(k / 2)
        let steps = 4 * k
        for s in 0...steps {
            let t = -r + 2 * r * Double(s) / Double(steps)
            let x = Int((r + t * cos(angle)).rounded()), y = Int((r + t * sin(angle)).rounded())
            kernel[y * k + x] = 1
        }
        let total = kernel.reduce(0, +)
        return kernel.map { $0 / total }
    }

    /// Sharpening as imgaug's `Sharpen`: the kernel `(1−α)·identity + α·S` with
    /// `S = [[-1,-1,-1],[-1,8+lightness,-1],[-1,-1,-1]]`.
    public static func sharpen(_ image: Image, alpha: Double, lightness: Double) -> Image {
        let a = Float(alpha), l = Float(lightness)
        var k = [Float](repeating: -a, count: 9)
        k[4] = (1 - a) + a * (8 + l)
        return filter(image, kernel: k, size: 3)
    }

    /// Embossing as imgaug's `Emboss`: `(1−α)·identity + α·E` with
    /// `E = [[-1-s,-s,0],[-s,1,s],[0,s,1+s]]`, `s` the strength.
    public static func emboss(_ image: Image, alpha: Double, strength: Double) -> Image {
        let a = Float(alpha), s = Float(strength)
        let e: [Float] = [-1 - s, -s, 0, -s, 1, s, 0, s, 1 + s]
        var k = e.map { a * $0 }
        k[4] += 1 - a
        return filter(image, kernel: k, size: 3)
    }

    /// `alpha · v + beta` on every sample (contrast `alpha`, brightness `beta` in 8-bit units).
    public static func brightnessContrast(_ image: Image, alpha: Double, beta: Double) -> Image {
        var lut = [UInt8](repeating: 0, count: 256)
        for v in 0..<256 { lut[v] = clamp8(Float(alpha * Double(v) + beta)) }
        var out = image
        for i in 0..<out.pixels.count { out.pixels[i] = lut[Int(image.pixels[i])] }
        return out
    }

    /// Shifts hue (degrees), saturation and value (both in 8-bit units, on the 0–255
    /// scale of OpenCV's HSV) of an RGB image; a gray image only gets the value shift.
    public static func hueSaturationValue(_ image: Image, hueShift: Double, saturationShift: Double, valueShift: Double) -> Image {
        if image.channels == 1 { return brightnessContrast(image, alpha: 1, beta: valueShift) }
        var out = image
        let ds = saturationShift / 255, dv = valueShift / 255
        let hueShift = hueShift.isFinite ? hueShift.truncatingRemainder(dividingBy: 360) : 0
        let n = image.height * image.width
        out.pixels.withUnsafeMutableBufferPointer { px in
            for i in 0..<n {
                let r = Double(px[3 * i]) / 255, g = Double(px[3 * i + 1]) / 255, b = Double(px[3 * i + 2]) / 255
                let mx = max(r, g, b), mn = min(r, g, b), delta = mx - mn
                var hue = 0.0
                if delta > 0 {
                    if mx == r { hue = 60 * ((g - b) / delta) } else if mx == g { hue = 60 * ((b - r) / delta + 2) } else { hue = 60 * ((r - g) / delta + 4) }
                }
                var sat = mx > 0 ? delta / mx : 0
                var val = mx
                hue += hueShift  // hue ∈ [-60, 300), |shift| < 360: at most two wraps
                while hue < 0 { hue += 360 }
                while hue >= 360 { hue -= 360 }
                sat = min(1, max(0, sat + ds))
                val = min(1, max(0, val + dv))
                // HSV → RGB
                let cc = val * sat, hp = hue / 60
                let sector = min(5, Int(hp))
                let xx = cc * (1 - abs(hp - Double(sector & ~1) - 1))
                var (r1, g1, b1) = (0.0, 0.0, 0.0)
                switch sector {
                case 0: (r1, g1, b1) = (cc, xx, 0)
                case 1: (r1, g1, b1) = (xx, cc, 0)
                case 2: (r1, g1, b1) = (0, cc, xx)
                case 3: (r1, g1, b1) = (0, xx, cc)
                case 4: (r1, g1, b1) = (xx, 0, cc)
                default: (r1, g1, b1) = (cc, 0, xx)
                }
                let m = val - cc
                px[3 * i] = clamp8(Float((r1 + m) * 255))
                px[3 * i + 1] = clamp8(Float((g1 + m) * 255))
                px[3 * i + 2] = clamp8(Float((b1 + m) * 255))
            }
        }
        return out
    }

    /// Contrast-limited adaptive histogram equalisation (Zuiderveld 1994) on `tiles × tiles`
    /// tiles: each tile's histogram is clipped at `clipLimit · (tile pixels) / 256`, the
    /// excess spread evenly over all bins, its CDF becomes the tile's mapping, and each
    /// pixel interpolates bilinearly between the mappings of the four nearest tile centres.
    /// RGB images are equalised on their luma; the luma change is added to every channel.
    public static func clahe(_ image: Image, clipLimit: Double, tiles: Int = 8) -> Image {
        let h = image.height, w = image.width
        let gray = image.grayscale().pixels
        let eq = claheChannel(gray, height: h, width: w, clipLimit: clipLimit, tiles: tiles)
        if image.channels == 1 { return Image(height: h, width: w, channels: 1, unchecked: eq) }
        var out = image
        for i in 0..<(h * w) {
            let d = Float(Int(eq[i]) - Int(gray[i]))
            for ch in 0..<3 { out.pixels[3 * i + ch] = clamp8(Float(image.pixels[3 * i + ch]) + d) }
        }
        return out
    }

    static func claheChannel(_ src: [UInt8], height h: Int, width w: Int, clipLimit: Double, tiles: Int) -> [UInt8] {
        let ty = max(1, min(tiles, h)), tx = max(1, min(tiles, w))
        var luts = [UInt8](repeating: 0, count: ty * tx * 256)
        var hist = [Int](repeating: 0, count: 256)
        for a in 0..<ty {
            let y0 = a * h / ty, y1 = (a + 1) * h / ty
            for b in 0..<tx {
                let x0 = b * w / tx, x1 = (b + 1) * w / tx
                for i in 0..<256 { hist[i] = 0 }
                for y in y0..<y1 { for x in x0..<x1 { hist[Int(src[y * w + x])] += 1 } }
                let area = (y1 - y0) * (x1 - x0)
                let limit = max(1, Int(clipLimit * Double(area) / 256))
                var excess = 0
                for i in 0..<256 where hist[i] > limit { excess += hist[i] - limit; hist[i] = limit }
                let share = excess / 256, rest = excess % 256
                for i in 0..<256 { hist[i] += share + (i < rest ? 1 : 0) }
                var cdf = 0
                let base = (a * tx + b) * 256
                for i in 0..<256 {
                    cdf += hist[i]
                    luts[base + i] = UInt8(min(255, (cdf * 255 + area / 2) / max(area, 1)))
                }
            }
        }
        var out = [UInt8](repeating: 0, count: h * w)
        let th = Double(h) / Double(ty), tw = Double(w) / Double(tx)
        for y in 0..<h {
            let gy = (Double(y) + 0.5) / th - 0.5
            let a0 = max(0, min(ty - 1, Int(gy.rounded(.down)))), a1 = min(ty - 1, a0 + 1)
            let fy = max(0, min(1, gy - Double(a0)))
            for x in 0..<w {
                let gx = (Double(x) + 0.5) / tw - 0.5
                let b0 = max(0, min(tx - 1, Int(gx.rounded(.down)))), b1 = min(tx - 1, b0 + 1)
                let fx = max(0, min(1, gx - Double(b0)))
                let v = Int(src[y * w + x])
                let l00 = Double(luts[(a0 * tx + b0) * 256 + v]), l01 = Double(luts[(a0 * tx + b1) * 256 + v])
                let l10 = Double(luts[(a1 * tx + b0) * 256 + v]), l11 = Double(luts[(a1 * tx + b1) * 256 + v])
                let r = (1 - fy) * ((1 - fx) * l00 + fx * l01) + fy * ((1 - fx) * l10 + fx * l11)
                out[y * w + x] = clamp8(Float(r))
            }
        }
        return out
    }
}

extension Image {
    /// Wraps pixels known to have the right size (internal fast path).
    init(height: Int, width: Int, channels: Int, unchecked pixels: [UInt8]) {
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
    }
}
