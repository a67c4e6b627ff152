import XCTest
import BGADCore

/// Augmentations with explicit parameters against closed forms, Otsu on a worked
/// histogram, and RPAG's exactness.
final class RPAGTests: XCTestCase {
    /// One marked pixel at `(y, x)` on a zero image, and its mask.
    func marker(_ h: Int, _ w: Int, _ y: Int, _ x: Int) -> (Image, [UInt8]) {
        var img = Image(height: h, width: w, channels: 1)
        var mask = [UInt8](repeating: 0, count: h * w)
        img.pixels[y * w + x] = 255
        mask[y * w + x] = 1
        return (img, mask)
    }

    func position(_ mask: [UInt8], _ w: Int) -> (Int, Int)? {
        guard let i = mask.firstIndex(of: 1) else { return nil }
        return (i / w, i % w)
    }

    func testRotate90FlipTransposeMoveAMarkedPixelAsTheirDefinitions() {
        let (h, w) = (5, 8)
        let (img, mask) = marker(h, w, 1, 6)
        // numpy.rot90 k=1: (y, x) → (w-1-x, y)
        let (r1i, r1m) = ImageOps.rotate90(img, mask, k: 1)
        XCTAssertEqual(r1i.height, w); XCTAssertEqual(r1i.width, h)
        XCTAssertTrue(position(r1m, h)! == (1, 1))
        XCTAssertEqual(r1i.pixels[1 * h + 1], 255)
        let (f1i, f1m) = ImageOps.flip(img, mask, code: 1)
        XCTAssertTrue(position(f1m, w)! == (1, 1)); XCTAssertEqual(f1i.pixels[1 * w + 1], 255)
        let (f0i, f0m) = ImageOps.flip(img, mask, code: 0)
        XCTAssertTrue(position(f0m, w)! == (3, 6)); XCTAssertEqual(f0i.pixels[3 * w + 6], 255)
        let (ti, tm) = ImageOps.transpose(img, mask)
        XCTAssertTrue(position(tm, h)! == (6, 1)); XCTAssertEqual(ti.pixels[6 * h + 1], 255)
        // four quarter turns are the identity
        var (a, b) = (img, mask)
        for _ in 0..<4 { (a, b) = ImageOps.rotate90(a, b, k: 1) }
        XCTAssertEqual(a, img); XCTAssertEqual(b, mask)
    }

    func testShiftScaleRotateMovesMarkerToTheClosedFormPosition() {
        let (h, w) = (41, 41)
        let c = 20.0
        for (angle, scale, sx, sy) in [(90.0, 1.0, 0.0, 0.0), (30.0, 1.2, 0.05, -0.04), (-45.0, 0.8, -0.06, 0.02)] {
            let (y, x) = (12, 27)
            let (img, mask) = marker(h, w, y, x)
            let (oi, om) = ImageOps.shiftScaleRotate(img, mask, shiftX: sx, shiftY: sy, scale: scale, angle: angle)
            let a = angle * Double.pi / 180
            // q = c + s·R·(p − c) + t, R = [[cos, sin], [−sin, cos]]
            let px = Double(x) - c, py = Double(y) - c
            let qx = c + scale * (cos(a) * px + sin(a) * py) + sx * Double(w)
            let qy = c + scale * (-sin(a) * px + cos(a) * py) + sy * Double(h)
            // The mask pixels are within one pixel of q, and the image's brightest pixel is one of them.
            let set = (0..<(h * w)).filter { om[$0] == 1 }
            XCTAssertFalse(set.isEmpty)
            for i in set {
                XCTAssertLessThanOrEqual(abs(Double(i / w) - qy), 1.0)
                XCTAssertLessThanOrEqual(abs(Double(i % w) - qx), 1.0)
            }
            let brightest = oi.pixels.indices.max { oi.pixels[$0] < oi.pixels[$1] }!
            XCTAssertLessThanOrEqual(abs(Double(brightest / w) - qy), 1.0)
            XCTAssertLessThanOrEqual(abs(Double(brightest % w) - qx), 1.0)
        }
    }

    func testZeroDistortionsAreTheIdentity() {
        var img = Image(height: 17, width: 23, channels: 3)
        for i in 0..<img.pixels.count { img.pixels[i] = UInt8(truncatingIfNeeded: i &* 37) }
        let mask = (0..<(17 * 23)).map { UInt8($0 % 3 == 0 ? 1 : 0) }
        let (oi, om) = ImageOps.opticalDistortion(img, mask, k: 0, dx: 3, dy: -2)
        XCTAssertEqual(oi, img); XCTAssertEqual(om, mask)
        let (gi, gm) = ImageOps.gridDistortion(img, mask, stretchX: [1, 1, 1, 1, 1], stretchY: [2, 2, 2, 2, 2])
        XCTAssertEqual(gi, img); XCTAssertEqual(gm, mask)
        let (si, sm) = ImageOps.shiftScaleRotate(img, mask, shiftX: 0, shiftY: 0, scale: 1, angle: 0)
        XCTAssertEqual(si, img); XCTAssertEqual(sm, mask)
    }

    func testOpticalDistortionSamplesTheRadialFormula() {
        // Output pixel (y, x) = (8, 30) of a 41×41 image with k = 0.5 samples the source at
        // c + (q − c)(1 + k r² + k r⁴); put a marker there and check it arrives at (8, 30).
        let (h, w) = (41, 41), k = 0.5, c = 20.0
        let nx = (30 - c) / 41, ny = (8 - c) / 41
        let r2 = nx * nx + ny * ny, f = 1 + k * r2 + k * r2 * r2
        let sx = Int((c + nx * f * 41).rounded()), sy = Int((c + ny * f * 41).rounded())
        var img = Image(height: h, width: w, channels: 1)
        var mask = [UInt8](repeating: 0, count: h * w)
        for dy in -1...1 { for dx in -1...1 { img.pixels[(sy + dy) * w + sx + dx] = 200; mask[(sy + dy) * w + sx + dx] = 1 } }
        let (oi, om) = ImageOps.opticalDistortion(img, mask, k: k, dx: 0, dy: 0)
        XCTAssertEqual(om[8 * w + 30], 1)
        XCTAssertEqual(oi.pixels[8 * w + 30], 200)
    }

    func testOtsuOnAWorkedHistogram() {
        // Values 0 (×3), 1 (×1), 4 (×4): thresholds t = 0..3 give between-class variances
        // w0·w1·(μ0 − μ1)²: t=0: 3·5·(0 − 16/5)² = 153.6; t=1..3: 4·4·(0.25 − 4)² = 225.
        // The first maximum is t = 1 (scikit-image's argmax).
        var hist = [Int](repeating: 0, count: 256)
        hist[0] = 3; hist[1] = 1; hist[4] = 4
        XCTAssertEqual(Foreground.otsuThreshold(histogram: hist), 1)
        hist = [Int](repeating: 0, count: 256); hist[9] = 5
        XCTAssertEqual(Foreground.otsuThreshold(histogram: hist), 9)
    }

    func testForegroundOfADarkObjectOnBrightBackground() {
        var img = Image(height: 40, width: 50, channels: 1, fill: 220)
        for y in 10..<30 { for x in 5..<25 { img.pixels[y * 50 + x] = 30 } }
        let fg = Foreground.mask(of: img, mode: .otsu)
        for y in 0..<40 { for x in 0..<50 {
            XCTAssertEqual(fg[y * 50 + x], (10..<30).contains(y) && (5..<25).contains(x) ? 1 : 0)
        } }
        XCTAssertTrue(Foreground.mask(of: img, mode: .whole).allSatisfy { $0 == 1 })
    }

    func testGenerateIsExactAndReproducible() throws {
        var normal = Image(height: 48, width: 48, channels: 3, fill: 20)
        for y in 8..<40 { for x in 8..<40 { for ch in 0..<3 { normal.pixels[(y * 48 + x) * 3 + ch] = 150 } } }
        var anomaly = normal
        var mask = [UInt8](repeating: 0, count: 48 * 48)
        for y in 2..<9 { for x in 2..<5 { mask[y * 48 + x] = 255; anomaly.pixels[(y * 48 + x) * 3] = 250 } }
        for seed in UInt64(0)..<20 {
            var g1 = RPAG(seed: seed, alwaysApply: true), g2 = RPAG(seed: seed, alwaysApply: true)
            let s = try g1.generate(normal: normal, anomaly: anomaly, anomalyMask: mask)
            let t = try g2.generate(normal: normal, anomaly: anomaly, anomalyMask: mask)
            XCTAssertEqual(s.image, t.image); XCTAssertEqual(s.mask, t.mask)
            for i in 0..<(48 * 48) {
                if s.mask[i] == 0 {
                    XCTAssertEqual(s.source[i], -1)
                    for ch in 0..<3 { XCTAssertEqual(s.image.pixels[i * 3 + ch], normal.pixels[i * 3 + ch]) }
                } else {
                    let j = Int(s.source[i])
                    XCTAssertEqual(s.augmentedMask[j], 1)
                    for ch in 0..<3 { XCTAssertEqual(s.image.pixels[i * 3 + ch], s.augmentedImage.pixels[j * 3 + ch]) }
                }
            }
        }
        var g = RPAG(seed: 1)
        XCTAssertThrowsError(try g.generate(normal: normal, anomaly: anomaly, anomalyMask: [UInt8](repeating: 0, count: 48 * 48)))
    }
}

/// Photometric operations against hand-worked values.
final class RPAGPhotometricTests: XCTestCase {
    func testHueSaturationValueRoundTripAndPrimaryRotation() throws {
        var px = [UInt8](repeating: 0, count: 3 * 500)
        var g = SeededRandom(seed: 5)
        for i in 0..<px.count { px[i] = UInt8(truncatingIfNeeded: g.next()) }
        let img = try Image(height: 20, width: 25, channels: 3, pixels: px)
        // zero shifts: RGB → HSV → RGB returns every pixel unchanged
        XCTAssertEqual(ImageOps.hueSaturationValue(img, hueShift: 0, saturationShift: 0, valueShift: 0), img)
        // +120° turns red into green and green into blue; −120° (= +240°) turns red into blue
        let rgb = try Image(height: 1, width: 2, channels: 3, pixels: [255, 0, 0, 0, 255, 0])
        XCTAssertEqual(ImageOps.hueSaturationValue(rgb, hueShift: 120, saturationShift: 0, valueShift: 0).pixels, [0, 255, 0, 0, 0, 255])
        XCTAssertEqual(ImageOps.hueSaturationValue(rgb, hueShift: -120, saturationShift: 0, valueShift: 0).pixels, [0, 0, 255, 255, 0, 0])
        // saturation −255 gives gray at the value (max channel)
        let c = try Image(height: 1, width: 1, channels: 3, pixels: [200, 100, 50])
        XCTAssertEqual(ImageOps.hueSaturationValue(c, hueShift: 0, saturationShift: -255, valueShift: 0).pixels, [200, 200, 200])
    }

    func testBrightnessContrastAndKernels() throws {
        let img = try Image(height: 1, width: 4, channels: 1, pixels: [0, 10, 100, 250])
        // 1.2·v + 10, rounded, clamped: 10, 22, 130, 255
        XCTAssertEqual(ImageOps.brightnessContrast(img, alpha: 1.2, beta: 10).pixels, [10, 22, 130, 255])
        // On a flat image a kernel acts as its sum: emboss sums to 1 (unchanged); imgaug's
        // sharpen sums to 1 − α + α·lightness: 77 · (1 − 0.4 + 0.28) = 67.76 → 68.
        let flat = Image(height: 6, width: 7, channels: 3, fill: 77)
        XCTAssertEqual(ImageOps.emboss(flat, alpha: 0.4, strength: 0.5), flat)
        XCTAssertEqual(ImageOps.sharpen(flat, alpha: 0.4, lightness: 0.7), Image(height: 6, width: 7, channels: 3, fill: 68))
        // CLAHE with one tile and no clipping is histogram equalisation, round(255·cdf(v)/n):
        // counts 0:2, 50:3, 200:2, 255:1 of n = 8 → 64, 159, 223, 255.
        let ramp = try Image(height: 1, width: 8, channels: 1, pixels: [0, 0, 50, 50, 50, 200, 200, 255])
        XCTAssertEqual(ImageOps.clahe(ramp, clipLimit: 100, tiles: 1).pixels, [64, 64, 159, 159, 159, 223, 223, 255])
        // motion kernels are normalised and symmetric about the centre
        for k in [3, 5, 7] {
            let kernel = ImageOps.motionKernel(size: k, angle: 0.7)
            XCTAssertEqual(kernel.reduce(0, +), 1, accuracy: 1e-6)
            XCTAssertEqual(kernel, Array(kernel.reversed()))
        }
    }

    func testGaussianNoiseHasTheRequestedMoments() {
        // Φ⁻¹ against reference values (e.g. scipy.stats.norm.ppf).
        XCTAssertEqual(ImageOps.inverseNormalCDF(0.975), 1.959963984540054, accuracy: 1e-12)
        XCTAssertEqual(ImageOps.inverseNormalCDF(0.5), 0, accuracy: 1e-15)
        XCTAssertEqual(ImageOps.inverseNormalCDF(1e-5), -4.264890793922825, accuracy: 1e-10)
        // Noise of σ = 10 on a flat 128 image: mean 0, standard deviation 10 (rounding adds
        // 1/12 to the variance), within sampling error of 300 000 draws.
        let flat = Image(height: 300, width: 1000, channels: 1, fill: 128)
        var g = SeededRandom(seed: 3)
        let noisy = ImageOps.gaussianNoise(flat, sigma: 10, rng: &g)
        var sum = 0.0, sq = 0.0
        for v in noisy.pixels { let d = Double(v) - 128; sum += d; sq += d * d }
        let n = Double(noisy.pixels.count), mean = sum / n
        XCTAssertEqual(mean, 0, accuracy: 0.06)
        XCTAssertEqual((sq / n - mean * mean).squareRoot(), (100 + 1.0 / 12).squareRoot(), accuracy: 0.05)
    }
}
