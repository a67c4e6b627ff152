/// RandAugment-based pseudo anomaly generation (paper Sec. 3.5, `docs/METHOD.md`, "RPAG").

/// One augmentation of the RPAG pool, applied with parameters drawn at random.
public enum Augmentation: Int32, CaseIterable, Sendable {
    /// `k` quarter turns, `k` uniform in 0...3 (0 or 2 on a non-square image, which keeps its shape).
    case rotate90 = 0
    /// Horizontal, vertical or both, uniformly.
    case flip = 1
    /// Rows ↔ columns (a half turn on a non-square image, which keeps its shape).
    case transpose = 2
    /// Shift ±6.25 % of the size per axis, scale ×[0.8, 1.2], rotation ±45°.
    case shiftScaleRotate = 3
    /// Optical distortion `k` ∈ [−1, 1], centre shifted ±5 % of the size.
    case opticalDistortion = 4
    /// Grid distortion, 5 × 5 cells, each stretched by 1 + U(−0.3, 0.3).
    case gridDistortion = 5
    /// Additive Gaussian noise, variance ∈ [10, 50] (8-bit units).
    case gaussianNoise = 6
    /// 3 × 3 box blur.
    case boxBlur = 7
    /// 3 × 3 median blur.
    case medianBlur = 8
    /// Motion blur: a streak of length 3, 5 or 7 at a uniform angle.
    case motionBlur = 9
    /// Sharpen, α ∈ [0.2, 0.5], lightness ∈ [0.5, 1].
    case sharpen = 10
    /// Emboss, α ∈ [0.2, 0.5], strength ∈ [0.2, 0.7].
    case emboss = 11
    /// CLAHE, clip limit ∈ [1, 2], 8 × 8 tiles.
    case clahe = 12
    /// Brightness ±0.2·255 and contrast ×[0.8, 1.2].
    case brightnessContrast = 13
    /// Hue ±20 (OpenCV units of 2°), saturation ±30, value ±20 (8-bit units).
    case hueSaturation = 14

    /// Whether the augmentation moves pixels (and so the mask).
    public var isGeometric: Bool { rawValue <= Augmentation.gridDistortion.rawValue }

    /// The name used by the Python API, e.g. "shift_scale_rotate".
    public var name: String {
        ["rotate90", "flip", "transpose", "shift_scale_rotate", "optical_distortion", "grid_distortion",
         "gaussian_noise", "box_blur", "median_blur", "motion_blur", "sharpen", "emboss", "clahe",
         "brightness_contrast", "hue_saturation"][Int(rawValue)]
    }
}

/// The pseudo anomaly generator: seeded, reproducible (same seed and inputs → same output).
///
/// The pool follows the authors' albumentations list (`MVTecFSCopyPasteDataset`): 10
/// slots, 3 distinct slots drawn per sample and applied in the order drawn. A slot fires
/// with the authors' probability (unless `alwaysApply`), and a slot with alternatives
/// picks one with the authors' relative weights:
///
/// | slot | applies with p | alternatives (weight) |
/// |---|---|---|
/// | 0 | 0.5 | rotate90 |
/// | 1 | 0.5 | flip |
/// | 2 | 0.5 | transpose |
/// | 3 | 1.0 | optical distortion, strong (`k` ∈ [−1, 1]) |
/// | 4 | 0.2 | Gaussian noise |
/// | 5 | 0.2 | motion blur (2), median blur (1), box blur (1) |
/// | 6 | 0.2 | shift-scale-rotate |
/// | 7 | 0.2 | optical distortion, mild (`k` ∈ [−0.05, 0.05]) (3), grid distortion (1) |
/// | 8 | 0.3 | CLAHE, sharpen, emboss, brightness-contrast (1 each) |
/// | 9 | 0.3 | hue-saturation |
///
/// (The authors' slot 7 also offers imgaug's piecewise affine and slot 4 imgaug's
/// additive noise; both are left out / merged here.)
public struct RPAG: Sendable {
    /// The random state; every draw of the generator comes from it.
    public var rng: SeededRandom
    /// Fire every drawn slot (probability 1) instead of with the authors' probabilities.
    public var alwaysApply: Bool

    /// A generator seeded with `seed`.
    public init(seed: UInt64, alwaysApply: Bool = false) {
        rng = SeededRandom(seed: seed)
        self.alwaysApply = alwaysApply
    }

    /// Everything one generation produced.
    public struct Sample: Sendable {
        /// The synthetic anomalous image `I_sa`.
        public var image: Image
        /// Its exact defect mask `M_sa` (1 = defect), `height × width`.
        public var mask: [UInt8]
        /// The anomaly image after the augmentations.
        public var augmentedImage: Image
        /// The anomaly mask after the augmentations (0/1).
        public var augmentedMask: [UInt8]
        /// For every pixel of `image`: the index (`y * width + x`) of the pixel of
        /// `augmentedImage` pasted there, or −1 where `image` is the normal image.
        public var source: [Int32]
        /// Augmentations applied, in order.
        public var operations: [Augmentation]
        /// True if the defect was pasted in place (≥ 2/3 of it on the foreground).
        public var pastedInPlace: Bool
    }

    /// Applies `augmentation` with parameters drawn from `rng` to an image and its mask
    /// (photometric ones leave the mask unchanged). With `keepShape`, rotate90 and
    /// transpose of a non-square image are restricted to shape-preserving variants.
    public mutating func apply(_ augmentation: Augmentation, image: Image, mask: [UInt8], keepShape: Bool = true) -> (Image, [UInt8]) {
        let h = image.height, w = image.width
        let square = h == w || !keepShape
        switch augmentation {
        case .rotate90:
            let k = square ? rng.below(4) : 2 * rng.below(2)
            return ImageOps.rotate90(image, mask, k: k)
        case .flip:
            return ImageOps.flip(image, mask, code: rng.below(3) - 1)
        case .transpose:
            return square ? ImageOps.transpose(image, mask) : ImageOps.rotate90(image, mask, k: 2)
        case .shiftScaleRotate:
            let sx = rng.uniform(-0.0625, 0.0625), sy = rng.uniform(-0.0625, 0.0625)
            let scale = 1 + rng.uniform(-0.2, 0.2), angle = rng.uniform(-45, 45)
            return ImageOps.shiftScaleRotate(image, mask, shiftX: sx, shiftY: sy, scale: scale, angle: angle)
        case .opticalDistortion:
            return opticalDistortion(image, mask, limit: 1.0)
        case .gridDistortion:
            let sx = (0..<5).map { _ in 1 + rng.uniform(-0.3, 0.3) }, sy = (0..<5).map { _ in 1 + rng.uniform(-0.3, 0.3) }
            return ImageOps.gridDistortion(image, mask, stretchX: sx, stretchY: sy)
        case .gaussianNoise:
            let sigma = rng.uniform(10, 50).squareRoot()
            return (ImageOps.gaussianNoise(image, sigma: sigma, rng: &rng), mask)
        case .boxBlur:
            return (ImageOps.boxBlur(image, size: 3), mask)
        case .medianBlur:
            return (ImageOps.medianBlur3(image), mask)
        case .motionBlur:
            let k = 3 + 2 * rng.below(3)
            let kernel = ImageOps.motionKernel(size: k, angle: rng.uniform(0, Double.pi))
            return (ImageOps.filter(image, kernel: kernel, size: k), mask)
        case .sharpen:
            return (ImageOps.sharpen(image, alpha: rng.uniform(0.2, 0.5), lightness: rng.uniform(0.5, 1.0)), mask)
        case .emboss:
            return (ImageOps.emboss(image, alpha: rng.uniform(0.2, 0.5), strength: rng.uniform(0.2, 0.7)), mask)
        case .clahe:
            return (ImageOps.clahe(image, clipLimit: rng.uniform(1, 2)), mask)
        case .brightnessContrast:
            let alpha = 1 + rng.uniform(-0.2, 0.2), beta = rng.uniform(-0.2, 0.2) * 255
            return (ImageOps.brightnessContrast(image, alpha: alpha, beta: beta), mask)
        case .hueSaturation:
            return (ImageOps.hueSaturationValue(image, hueShift: 2 * rng.uniform(-20, 20),
                                               saturationShift: rng.uniform(-30, 30), valueShift: rng.uniform(-20, 20)), mask)
        }
    }

    private mutating func opticalDistortion(_ image: Image, _ mask: [UInt8], limit: Double) -> (Image, [UInt8]) {
        let k = rng.uniform(-limit, limit)
        let dx = (rng.uniform(-0.05, 0.05) * Double(image.width)).rounded()
        let dy = (rng.uniform(-0.05, 0.05) * Double(image.height)).rounded()
        return ImageOps.opticalDistortion(image, mask, k: k, dx: dx, dy: dy)
    }

    /// Draws 3 distinct slots of the pool and applies them (see the type's table).
    public mutating func augmentDefect(image: Image, mask: [UInt8]) -> (Image, [UInt8], [Augmentation]) {
        var slots = Array(0..<10)
        var img = image, m = mask
        var ops: [Augmentation] = []
        for i in 0..<3 {
            let j = i + rng.below(10 - i)
            slots.swapAt(i, j)
            let slot = slots[i]
            let p = [0.5, 0.5, 0.5, 1.0, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3][slot]
            if !alwaysApply && !(rng.uniform() < p) { continue }
            var op: Augmentation
            switch slot {
            case 0: op = .rotate90
            case 1: op = .flip
            case 2: op = .transpose
            case 3:
                (img, m) = opticalDistortion(img, m, limit: 1.0)
                ops.append(.opticalDistortion)
                continue
            case 4: op = .gaussianNoise
            case 5: op = [.motionBlur, .motionBlur, .medianBlur, .boxBlur][rng.below(4)]
            case 6: op = .shiftScaleRotate
            case 7:
                if rng.below(4) < 3 {
                    (img, m) = opticalDistortion(img, m, limit: 0.05)
                    ops.append(.opticalDistortion)
                    continue
                }
                op = .gridDistortion
            case 8: op = [.clahe, .sharpen, .emboss, .brightnessContrast][rng.below(4)]
            default: op = .hueSaturation
            }
            (img, m) = apply(op, image: img, mask: m)
            ops.append(op)
        }
        return (img, m, ops)
    }

    /// Generates one pseudo anomaly (`docs/METHOD.md`, "RPAG", steps 1–5).
    ///
    /// 1. Pair: the caller chooses the normal image `I_n` and the known anomaly (`Detector`
    ///    draws the normal image with the seed).
    /// 2. Augment the anomaly image and its mask (`augmentDefect`); if the augmented mask
    ///    is empty (a tiny defect lost by a zoom-out), redraw, up to 10 times, then use
    ///    the defect unaugmented.
    /// 3. Foreground `F` of the normal image: `foreground` if given (non-zero = object),
    ///    else `Foreground.mask(of: normal, mode: foregroundMode)`.
    /// 4. Place: if `3·|M ∩ F| ≥ 2·|M|` (at least 2/3 of the defect on the foreground), or
    ///    there is no foreground at all, the defect stays in place. Otherwise each
    ///    8-connected region `R` of `M`, with centre `c = round(mean of its pixel
    ///    coordinates)` and bounding box `B`, is moved by `p − c` for a foreground point `p`
    ///    drawn uniformly among those for which the moved `B` stays inside the image; if
    ///    there is none, `p` is drawn among all foreground points and the shift is clipped
    ///    so that `B` stays inside.
    /// 5. Paste: `I_sa = I_n` except where the augmented anomaly's pixels land; regions are
    ///    pasted in order (a later one overwrites an earlier one where they overlap). The
    ///    returned mask is exactly the set of pasted pixels.
    public mutating func generate(normal: Image, anomaly: Image, anomalyMask: [UInt8], foreground: [UInt8]? = nil,
                                  foregroundMode: Foreground.Mode = .otsu) throws(BGADError) -> Sample {
        let h = normal.height, w = normal.width, c = normal.channels, n = h * w
        guard anomaly.height == h, anomaly.width == w, anomaly.channels == c else {
            throw .invalid("anomaly image is \(anomaly.height)×\(anomaly.width)×\(anomaly.channels) but the normal image is \(h)×\(w)×\(c)")
        }
        guard anomalyMask.count == n else { throw .invalid("anomaly_mask has \(anomalyMask.count) pixels, expected \(h)×\(w)") }
        if let f = foreground, f.count != n { throw .invalid("foreground has \(f.count) pixels, expected \(h)×\(w)") }
        guard n > 0 else { throw .invalid("empty images (\(h)×\(w))") }
        let binary = anomalyMask.map { $0 != 0 ? UInt8(1) : 0 }
        guard binary.contains(1) else { throw .invalid("anomaly_mask is empty: no defect pixel to paste") }

        var (augImage, augMask, ops) = augmentDefect(image: anomaly, mask: binary)
        var attempts = 1
        while !augMask.contains(1) {
            if attempts == 10 { (augImage, augMask, ops) = (anomaly, binary, []); break }
            (augImage, augMask, ops) = augmentDefect(image: anomaly, mask: binary)
            attempts += 1
        }
        let fg = foreground.map { f in f.map { $0 != 0 ? UInt8(1) : 0 } } ?? Foreground.mask(of: normal, mode: foregroundMode)

        var area = 0, overlap = 0
        for i in 0..<n where augMask[i] != 0 {
            area += 1
            if fg[i] != 0 { overlap += 1 }
        }
        var out = normal
        var outMask = [UInt8](repeating: 0, count: n)
        var source = [Int32](repeating: -1, count: n)
        let fgPoints = (0..<n).filter { fg[$0] != 0 }
        let inPlace = 3 * overlap >= 2 * area || fgPoints.isEmpty
        if inPlace {
            for i in 0..<n where augMask[i] != 0 { paste(from: i, to: i, &out, &outMask, &source, augImage) }
        } else {
            let cc = ConnectedComponents(mask: augMask, height: h, width: w)
            // Per region: sums of coordinates and bounding box.
            var sumX = [Int](repeating: 0, count: cc.count), sumY = sumX
            var x0 = [Int](repeating: w, count: cc.count), x1 = [Int](repeating: -1, count: cc.count)
            var y0 = [Int](repeating: h, count: cc.count), y1 = [Int](repeating: -1, count: cc.count)
            for i in 0..<n where cc.labels[i] != 0 {
                let k = Int(cc.labels[i]) - 1, x = i % w, y = i / w
                sumX[k] += x; sumY[k] += y
                x0[k] = min(x0[k], x); x1[k] = max(x1[k], x); y0[k] = min(y0[k], y); y1[k] = max(y1[k], y)
            }
            var shifts = [(Int, Int)]()
            var candidates = [Int]()
            for k in 0..<cc.count {
                let size = cc.sizes[k]
                // round(mean) = floor((2·sum + size) / (2·size)), exact in integers.
                let cx = (2 * sumX[k] + size) / (2 * size), cy = (2 * sumY[k] + size) / (2 * size)
                // Foreground points p whose shift keeps the bounding box inside the image.
                let pxLo = cx - x0[k], pxHi = w - 1 - (x1[k] - cx)
                let pyLo = cy - y0[k], pyHi = h - 1 - (y1[k] - cy)
                candidates.removeAll(keepingCapacity: true)
                for i in fgPoints {
                    let x = i % w, y = i / w
                    if x >= pxLo && x <= pxHi && y >= pyLo && y <= pyHi { candidates.append(i) }
                }
                let p = candidates.isEmpty ? fgPoints[rng.below(fgPoints.count)] : candidates[rng.below(candidates.count)]
                var dx = p % w - cx, dy = p / w - cy
                dx = max(-x0[k], min(w - 1 - x1[k], dx))
                dy = max(-y0[k], min(h - 1 - y1[k], dy))
                shifts.append((dx, dy))
            }
            for k in 0..<cc.count {
                let (dx, dy) = shifts[k]
                for y in y0[k]...y1[k] {
                    for x in x0[k]...x1[k] where Int(cc.labels[y * w + x]) == k + 1 {
                        paste(from: y * w + x, to: (y + dy) * w + (x + dx), &out, &outMask, &source, augImage)
                    }
                }
            }
        }
        return Sample(image: out, mask: outMask, augmentedImage: augImage, augmentedMask: augMask,
                      source: source, operations: ops, pastedInPlace: inPlace)
    }

    @inline(__always)
    private func paste(from s: Int, to d: Int, _ out: inout Image, _ mask: inout [UInt8], _ source: inout [Int32], _ aug: Image) {
        let c = out.channels
        for ch in 0..<c { out.pixels[d * c + ch] = aug.pixels[s * c + ch] }
        mask[d] = 1
        source[d] = Int32(s)
    }
}
