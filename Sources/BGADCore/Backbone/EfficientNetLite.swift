#if canImport(Glibc)
import Glibc
#endif
import BGADKernelsAVX2

/// ImageNet-pretrained EfficientNet-Lite0, Lite1 or Lite2 (`Variant`), the built-in
/// feature extractor of BGAD. Every variant runs the same code; only the blocks differ.
///
/// Inference only, channels-last (HWC) throughout, with BatchNorm folded into the
/// convolutions (see `bgad.weights`):
/// - stem: 3×3 stride-2 convolution as im2col (patch order ky, kx, cin) × a 27 × 32 matrix
///   (`cblas_sgemm`), then ReLU6;
/// - each block (`variant.blocks`): 1×1 expansion as one `sgemm` on the
///   `(H·W) × Cin` matrix + ReLU6, depthwise k×k (`depthwiseConvolutionReLU6`), linear 1×1
///   projection (`sgemm`), plus the input when the block keeps its shape;
/// - head: 1×1 to 1280 + ReLU6, global average pooling, fully connected 1280 → 1000.
/// Every convolution pads with TensorFlow's 'SAME' rule (`SamePadding`).
///
/// Each block runs in tiles of output rows: the expansion of the rows a tile needs (its
/// depthwise halo included, rows shared with the next tile kept) is followed at once by
/// the depthwise and projection convolutions, so the 6×-wide expanded map never leaves
/// the cache. The forward pass stops after the deepest block a request needs
/// (`Variant.levels`; Lite0: block 10 for strides 4/8/16, block 15 for stride 32).
/// Feature maps are returned as `(N, C, H, W)`.
/// With `blasThreadCount` = T > 1 threads, whole rounds of T images run one image per
/// thread, and the remaining images run one at a time in T horizontal bands (one barrier
/// per block); BLAS is single-threaded inside either way. Workspaces are kept and reused.
/// An instance is immutable after loading and may be shared between threads.
public final class EfficientNetLite {
    /// Memory layout of a preprocessed input batch.
    public enum Layout: Sendable {
        /// `(N, 3, H, W)`, as PyTorch.
        case nchw
        /// `(N, H, W, 3)`, channels-last.
        case nhwc
    }

    /// The variant whose weights this instance holds.
    public let variant: Variant
    /// The variant's blocks (`variant.blocks`), kept for the forward pass.
    let blocks: [Block]
    /// Every tensor, each starting on a 64-byte boundary (`PackedMatrix.alignedCount`).
    let storage: FloatBuffer
    /// The 1×1 convolution weights again, packed for `packedGemm` at the same offsets as in
    /// `storage` (nil on CPUs without AVX-512; the other tensors' ranges stay unused).
    let packedStorage: FloatBuffer?
    struct BlockWeights {
        var expand: UnsafeMutablePointer<Float>?, expandBias: UnsafeMutablePointer<Float>?
        var depthwise: UnsafeMutablePointer<Float>, depthwiseBias: UnsafeMutablePointer<Float>
        var project: UnsafeMutablePointer<Float>, projectBias: UnsafeMutablePointer<Float>
    }
    let stem: (w: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>)
    let blockWeights: [BlockWeights]
    let head: (w: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>)
    let classifier: (w: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>)
    var workspaces: [Workspace] = []

    /// When true, every image is computed in the same horizontal bands (one per thread, fixed
    /// and equal boundaries): an image a worker runs whole goes through all the bands in
    /// turn, block by block, and a leftover image is split across the workers band by band.
    /// Either way it issues the same products, so an image's features do not depend on the
    /// batch it came in nor on the call (a product over other rows can differ in its last
    /// bits), at the price of the leftover images' speed balancing. `Detector` sets it.
    /// Set it before the first call; it is not meant to change while calls run.
    public var fixedBands = false
    let workspaceLock = Mutex()

    /// Loads the engine weight file written by `bgad.weights` (validated: magic, version,
    /// sizes, checksum, architecture). The file says which variant it holds; with
    /// `variant` given, a file of another variant is refused (`.format`, naming both).
    public convenience init(variant: Variant? = nil, weightFile path: String) throws(BGADError) {
        let contents = try EfficientNetLiteWeightFile.read(path: path, expecting: variant)
        try self.init(variant: contents.variant, tensors: contents.tensors)
    }

    /// Builds the network from the bytes of an engine weight file held in memory (see
    /// `init(variant:weightFile:)`); `name` is used in messages.
    public convenience init(variant: Variant? = nil, weightFileBytes bytes: [UInt8], name: String = "weight file") throws(BGADError) {
        let contents = try EfficientNetLiteWeightFile.decode(bytes, name: name, expecting: variant)
        try self.init(variant: contents.variant, tensors: contents.tensors)
    }

    /// Builds `variant` from BatchNorm-folded tensors in the order of `variant.tensorShapes`.
    public init(variant: Variant = .lite0, tensors: [[Float]]) throws(BGADError) {
        self.variant = variant
        blocks = variant.blocks
        let shapes = variant.tensorShapes
        guard tensors.count == shapes.count else {
            throw BGADError(.format, "\(variant.displayName) needs \(shapes.count) tensors, got \(tensors.count)")
        }
        for (i, (t, s)) in zip(tensors, shapes).enumerated() where t.count != s.reduce(1, *) {
            throw BGADError(.format, "tensor \(i) has \(t.count) values, expected shape \(s)")
        }
        // Each tensor starts on a 64-byte boundary, in `storage` and in its packed copy (the
        // buffers are 64-byte aligned and zero-filled).
        let storageCount = tensors.reduce(0) { $0 + PackedMatrix.alignedCount($1.count) }
        storage = try FloatBuffer(capacity: storageCount)
        let base = storage.pointer
        var pointers: [UnsafeMutablePointer<Float>] = []
        var p = base
        for t in tensors {
            t.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: t.count) }
            pointers.append(p)
            p += PackedMatrix.alignedCount(t.count)
        }
        var i = 0
        func next() -> UnsafeMutablePointer<Float> { i += 1; return pointers[i - 1] }
        stem = (next(), next())
        var weights: [BlockWeights] = []
        for b in blocks {
            var e: UnsafeMutablePointer<Float>? = nil, eb: UnsafeMutablePointer<Float>? = nil
            if b.expansion != 1 { e = next(); eb = next() }
            let d = next(), db = next(), pw = next(), pb = next()
            weights.append(BlockWeights(expand: e, expandBias: eb, depthwise: d, depthwiseBias: db, project: pw, projectBias: pb))
        }
        head = (next(), next())
        classifier = (next(), next())
        blockWeights = weights
        if VectorISA.cpuHasAVX512 {
            let buffer = try FloatBuffer(capacity: storageCount), packed = buffer.pointer
            func pack(_ w: UnsafeMutablePointer<Float>, inputs k: Int, outputs n: Int) {
                if PackedMatrix.canPack(rows: k, columns: n) {
                    PackedMatrix.pack(w, rows: k, columns: n, ld: n, transposed: false, into: packed + (w - base))
                }
            }
            pack(stem.w, inputs: 27, outputs: EfficientNetLite.stemChannels)
            for (b, bw) in zip(blocks, weights) {
                if let e = bw.expand { pack(e, inputs: b.inputChannels, outputs: b.middleChannels) }
                pack(bw.project, inputs: b.middleChannels, outputs: b.outputChannels)
            }
            pack(head.w, inputs: blocks[blocks.count - 1].outputChannels, outputs: EfficientNetLite.headChannels)
            packedStorage = buffer
        } else {
            packedStorage = nil
        }
    }

    // MARK: - Public entry points

    /// Feature maps of preprocessed images (values `(p − 127) / 128`, 3 channels).
    ///
    /// - Parameters:
    ///   - input: `count` images of `height × width × 3` floats in `layout`.
    ///   - strides: requested levels, each of 4, 8, 16, 32 (no repeats).
    ///   - outputs: one buffer per stride receiving `(count, C, h, w)` floats, with `C`
    ///     and `(h, w)` from `variant.level(stride:)` and `featureSize(height:width:stride:)`.
    public func features(
        preprocessed input: UnsafePointer<Float>, layout: Layout, count: Int, height: Int, width: Int,
        strides: [Int], outputs: [UnsafeMutablePointer<Float>]
    ) throws(BGADError) {
        try validateBatch(count: count, height: height, width: width)
        let plan = try levelPlan(strides: strides, outputs: outputs)
        try requireFiniteInput(input, count * height * width * 3)
        try run(count: count, height: height, width: width, deepest: plan.deepest, classify: false,
                load: preprocessedLoader(input, layout, height, width),
                emit: emitter(plan, count: count, height: height, width: width), logits: nil)
    }

    /// Feature maps of 8-bit images: each image is resized to `inputHeight × inputWidth`
    /// (`resizeBilinear`, Pillow's BILINEAR), gray replicated to RGB, mapped to `(p − 127) / 128`.
    ///
    /// - Parameters:
    ///   - images: `count × height × width × channels` bytes, channels 1 (gray) or 3 (RGB).
    ///   - strides, outputs: as in `features(preprocessed:…)`, sizes for the input size.
    public func features(
        images: UnsafePointer<UInt8>, count: Int, height: Int, width: Int, channels: Int,
        inputHeight: Int, inputWidth: Int, strides: [Int], outputs: [UnsafeMutablePointer<Float>]
    ) throws(BGADError) {
        try validateImages(count: count, height: height, width: width, channels: channels)
        try validateBatch(count: count, height: inputHeight, width: inputWidth)
        let plan = try levelPlan(strides: strides, outputs: outputs)
        try run(count: count, height: inputHeight, width: inputWidth, deepest: plan.deepest, classify: false,
                load: imageLoader(images, height, width, channels, inputHeight, inputWidth),
                emit: emitter(plan, count: count, height: inputHeight, width: inputWidth), logits: nil)
    }

    /// ImageNet logits (`count × 1000`) of preprocessed images (see `features(preprocessed:…)`).
    public func classify(
        preprocessed input: UnsafePointer<Float>, layout: Layout, count: Int, height: Int, width: Int,
        logits: UnsafeMutablePointer<Float>
    ) throws(BGADError) {
        try validateBatch(count: count, height: height, width: width)
        try requireFiniteInput(input, count * height * width * 3)
        try run(count: count, height: height, width: width, deepest: blocks.count - 1,
                classify: true, load: preprocessedLoader(input, layout, height, width), emit: nil, logits: logits)
    }

    /// ImageNet logits (`count × 1000`) of 8-bit images (see `features(images:…)`).
    public func classify(
        images: UnsafePointer<UInt8>, count: Int, height: Int, width: Int, channels: Int,
        inputHeight: Int, inputWidth: Int, logits: UnsafeMutablePointer<Float>
    ) throws(BGADError) {
        try validateImages(count: count, height: height, width: width, channels: channels)
        try validateBatch(count: count, height: inputHeight, width: inputWidth)
        try run(count: count, height: inputHeight, width: inputWidth, deepest: blocks.count - 1,
                classify: true, load: imageLoader(images, height, width, channels, inputHeight, inputWidth),
                emit: nil, logits: logits)
    }

    // MARK: - Validation and plumbing

    /// Largest accepted side of the network input.
    public static let maximumInputSide = 2048

    func validateBatch(count: Int, height: Int, width: Int) throws(BGADError) {
        guard count >= 1 else { throw .invalid("backbone: no images given (count \(count))") }
        guard height >= 1, width >= 1 else { throw .invalid("backbone: input size must be positive, got \(height)×\(width)") }
        guard height <= Self.maximumInputSide, width <= Self.maximumInputSide else {
            throw .invalid("backbone: input size \(height)×\(width) exceeds \(Self.maximumInputSide)")
        }
    }

    func validateImages(count: Int, height: Int, width: Int, channels: Int) throws(BGADError) {
        guard channels == 1 || channels == 3 else {
            throw .invalid("backbone: images must have 1 (gray) or 3 (RGB) channels, got \(channels)")
        }
        guard height >= 1, width >= 1 else { throw .invalid("backbone: images are empty (\(height)×\(width))") }
        guard height <= 1 << 16, width <= 1 << 16 else { throw .invalid("backbone: images of \(height)×\(width) are too large") }
    }

    func requireFiniteInput(_ p: UnsafePointer<Float>, _ n: Int) throws(BGADError) {
        try requireFinite(UnsafeBufferPointer(start: p, count: n), "backbone: input")
    }

    struct LevelPlan {
        var deepest: Int
        var byBlock: [Int: (output: UnsafeMutablePointer<Float>, channels: Int)]
    }

    func levelPlan(strides: [Int], outputs: [UnsafeMutablePointer<Float>]) throws(BGADError) -> LevelPlan {
        guard !strides.isEmpty else { throw .invalid("backbone: no feature level requested") }
        guard strides.count == outputs.count else { throw .invalid("backbone: \(strides.count) levels but \(outputs.count) outputs") }
        var plan = LevelPlan(deepest: 0, byBlock: [:])
        for (s, out) in zip(strides, outputs) {
            guard let l = variant.level(stride: s) else {
                throw .invalid("backbone: no feature level at stride \(s); available: 4, 8, 16, 32")
            }
            guard plan.byBlock[l.block] == nil else { throw .invalid("backbone: stride \(s) requested twice") }
            plan.byBlock[l.block] = (out, l.channels)
            plan.deepest = max(plan.deepest, l.block)
        }
        return plan
    }

    typealias Loader = (Int, UnsafeMutablePointer<Float>, Workspace) -> Void
    /// (image, block, map HWC, h, w, pixels to copy)
    typealias Emitter = (Int, Int, UnsafePointer<Float>, Int, Int, Range<Int>) -> Void

    func preprocessedLoader(_ input: UnsafePointer<Float>, _ layout: Layout, _ h: Int, _ w: Int) -> Loader {
        return { n, dst, _ in
            let plane = h * w
            let src = input + n * plane * 3
            switch layout {
            case .nhwc:
                dst.update(from: src, count: plane * 3)
            case .nchw:
                for p in 0..<plane {
                    dst[3 * p] = src[p]
                    dst[3 * p + 1] = src[plane + p]
                    dst[3 * p + 2] = src[2 * plane + p]
                }
            }
        }
    }

    func imageLoader(_ images: UnsafePointer<UInt8>, _ h: Int, _ w: Int, _ c: Int, _ ih: Int, _ iw: Int) -> Loader {
        return { n, dst, ws in
            let src = images + n * h * w * c
            let pixels: UnsafePointer<UInt8>
            if h == ih && w == iw {
                pixels = src
            } else {
                // Sizes were validated by the caller; this cannot fail.
                try? resizeBilinear(src, height: h, width: w, channels: c, into: ws.resized, height: ih, width: iw)
                pixels = UnsafePointer(ws.resized)
            }
            let plane = ih * iw
            if c == 3 {
                for i in 0..<(plane * 3) { dst[i] = (Float(pixels[i]) - 127) / 128 }
            } else {
                for p in 0..<plane {
                    let v = (Float(pixels[p]) - 127) / 128
                    dst[3 * p] = v; dst[3 * p + 1] = v; dst[3 * p + 2] = v
                }
            }
        }
    }

    func emitter(_ plan: LevelPlan, count: Int, height: Int, width: Int) -> Emitter {
        let byBlock = plan.byBlock
        return { n, block, map, h, w, pixels in
            guard let (out, c) = byBlock[block] else { return }
            // HWC → CHW for image n, 8 pixels at a time: each channel's 8 values are
            // gathered from rows in L1 and stored contiguously (one store per channel
            // instead of 8 scattered ones).
            let dst = out + n * c * h * w
            let plane = h * w
            var p = pixels.lowerBound
            while p + 8 <= pixels.upperBound {
                let r = map + p * c
                for ch in 0..<c {
                    let v = SIMD8<Float>(r[ch], r[c + ch], r[2 * c + ch], r[3 * c + ch],
                                         r[4 * c + ch], r[5 * c + ch], r[6 * c + ch], r[7 * c + ch])
                    store8(v, dst + ch * plane + p)
                }
                p += 8
            }
            while p < pixels.upperBound {
                let row = map + p * c
                for ch in 0..<c { dst[ch * plane + p] = row[ch] }
                p += 1
            }
        }
    }
}
