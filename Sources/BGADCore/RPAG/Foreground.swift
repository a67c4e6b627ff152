/// Foreground masks: where on a normal image a pseudo anomaly may be pasted.

/// The object region of an image (`docs/METHOD.md`, "RPAG", step 3).
public enum Foreground {
    /// How the foreground is found.
    public enum Mode: Int32, Sendable {
        /// Otsu threshold on the gray image, automatic polarity, morphological clean-up.
        case otsu = 0
        /// Every pixel is foreground (textures, or images filled by the object).
        case whole = 1
    }

    /// Otsu's threshold of 8-bit gray values, as `skimage.filters.threshold_otsu`:
    /// over the integer levels `t` from the minimum to the maximum value, the `t`
    /// maximising the between-class variance `w₀(t) w₁(t) (μ₀(t) − μ₁(t))²` of the
    /// classes `≤ t` and `> t` (first maximum on ties). The foreground is `value > t`.
    /// A constant image returns its value.
    public static func otsuThreshold(_ gray: UnsafeBufferPointer<UInt8>) -> Int {
        var hist = [Int](repeating: 0, count: 256)
        for v in gray { hist[Int(v)] += 1 }
        return otsuThreshold(histogram: hist)
    }

    /// Otsu's threshold from a 256-bin histogram (see `otsuThreshold(_:)`).
    public static func otsuThreshold(histogram hist: [Int]) -> Int {
        guard let lo = hist.firstIndex(where: { $0 > 0 }), let hi = hist.lastIndex(where: { $0 > 0 }) else { return 0 }
        if lo == hi { return lo }
        // Same arithmetic as scikit-image: cumulative weights and means from both ends,
        // in floating point, over the bins lo...hi.
        let n = hi - lo + 1
        var w1 = [Double](repeating: 0, count: n), m1 = w1, w2 = w1, m2 = w1
        var cw = 0.0, cs = 0.0
        for i in 0..<n {
            cw += Double(hist[lo + i]); cs += Double(hist[lo + i]) * Double(lo + i)
            w1[i] = cw; m1[i] = cs / cw
        }
        cw = 0; cs = 0
        for i in stride(from: n - 1, through: 0, by: -1) {
            cw += Double(hist[lo + i]); cs += Double(hist[lo + i]) * Double(lo + i)
            w2[i] = cw; m2[i] = cw > 0 ? cs / cw : 0
        }
        var best = -1.0, bestIndex = 0
        for i in 0..<(n - 1) {
            let d = m1[i] - m2[i + 1]
            let v = w1[i] * w2[i + 1] * (d * d)
            if v > best { best = v; bestIndex = i }
        }
        return lo + bestIndex
    }

    /// The foreground mask (1 = object, 0 = background) of `image`, `height × width`.
    ///
    /// `.otsu`: threshold the gray image at Otsu's `t`; the polarity is chosen from the
    /// border: if most pixels of the outermost ring are `> t`, the background is bright
    /// and the object is `≤ t`, else the object is `> t`. Clean-up: a closing then an
    /// opening with a square of side `2r+1`, `r = max(1, min(h, w) / 128)`, then holes
    /// (background components not touching the border) are filled. A constant image,
    /// or a result with no foreground at all, gives the whole image.
    /// `.whole`: every pixel.
    public static func mask(of image: Image, mode: Mode) -> [UInt8] {
        let h = image.height, w = image.width, n = h * w
        if mode == .whole || n == 0 { return [UInt8](repeating: 1, count: n) }
        let gray = image.grayscale().pixels
        let t = gray.withUnsafeBufferPointer { otsuThreshold($0) }
        var border = 0, brightBorder = 0
        for i in borderIndices(h, w) {
            border += 1
            if Int(gray[i]) > t { brightBorder += 1 }
        }
        let objectIsBright = 2 * brightBorder <= border
        var m = [UInt8](repeating: 0, count: n)
        let level = UInt8(t)
        gray.withUnsafeBufferPointer { g in
            m.withUnsafeMutableBufferPointer { o in
                if objectIsBright { for i in 0..<n { o[i] = g[i] > level ? 1 : 0 } } else { for i in 0..<n { o[i] = g[i] > level ? 0 : 1 } }
            }
        }
        let r = max(1, min(h, w) / 128)
        m = erode(dilate(m, h, w, r), h, w, r)   // closing
        m = dilate(erode(m, h, w, r), h, w, r)   // opening
        fillHoles(&m, h, w)
        if !m.contains(1) { return [UInt8](repeating: 1, count: n) }
        return m
    }

    /// Max (dilate) or min (erode) over a `(2r+1)²` square, separable; pixels outside
    /// the image are ignored.
    static func morph(_ m: [UInt8], _ h: Int, _ w: Int, _ r: Int, max useMax: Bool) -> [UInt8] {
        // Shifted-row passes (vectorisable): out[x] = op over d in -r...r of in[x + d],
        // positions outside the image skipped.
        @inline(__always) func combine(_ a: UInt8, _ b: UInt8) -> UInt8 { useMax ? max(a, b) : min(a, b) }
        var tmp = m, out = m
        m.withUnsafeBufferPointer { src in
            tmp.withUnsafeMutableBufferPointer { t in
                for y in 0..<h {
                    let row = y * w
                    for d in 1...max(1, r) where d < w {
                        for x in 0..<(w - d) { t[row + x] = combine(t[row + x], src[row + x + d]) }
                        for x in d..<w { t[row + x] = combine(t[row + x], src[row + x - d]) }
                    }
                }
            }
        }
        tmp.withUnsafeBufferPointer { t in
            out.withUnsafeMutableBufferPointer { o in
                for y in 0..<h {
                    let row = y * w
                    for x in 0..<w { o[row + x] = t[row + x] }
                    for d in max(0, y - r)...min(h - 1, y + r) where d != y {
                        let other = d * w
                        for x in 0..<w { o[row + x] = combine(o[row + x], t[other + x]) }
                    }
                }
            }
        }
        return out
    }

    static func dilate(_ m: [UInt8], _ h: Int, _ w: Int, _ r: Int) -> [UInt8] { morph(m, h, w, r, max: true) }
    static func erode(_ m: [UInt8], _ h: Int, _ w: Int, _ r: Int) -> [UInt8] { morph(m, h, w, r, max: false) }

    /// Indices of the outermost ring of pixels, each once.
    static func borderIndices(_ h: Int, _ w: Int) -> [Int] {
        var out = [Int]()
        for x in 0..<w { out.append(x) }
        if h > 1 { for x in 0..<w { out.append((h - 1) * w + x) } }
        if h > 2 { for y in 1..<(h - 1) { out.append(y * w); if w > 1 { out.append(y * w + w - 1) } } }
        return out
    }

    /// Sets to 1 every background pixel not reachable from the border through background
    /// (the holes of the object; background connectivity 8, as the labelling elsewhere).
    static func fillHoles(_ m: inout [UInt8], _ h: Int, _ w: Int) {
        // 0 = background not yet reached, 1 = object, 2 = background reached from the border.
        var stack = [Int]()
        stack.reserveCapacity(2 * (h + w))
        m.withUnsafeMutableBufferPointer { p in
            for i in borderIndices(h, w) where p[i] == 0 { p[i] = 2; stack.append(i) }
            while let i = stack.popLast() {
                let y = i / w, x = i % w
                for dy in -1...1 {
                    let yy = y + dy
                    if yy < 0 || yy >= h { continue }
                    for dx in -1...1 {
                        let xx = x + dx
                        if xx < 0 || xx >= w { continue }
                        let j = yy * w + xx
                        if p[j] == 0 { p[j] = 2; stack.append(j) }
                    }
                }
            }
            for i in 0..<p.count { p[i] = p[i] == 2 ? 0 : 1 }
        }
    }
}
