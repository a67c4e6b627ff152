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
    private let blocks: [Block]
    private let storage: UnsafeMutablePointer<Float>
    private let storageCount: Int
    /// The 1×1 convolution weights again, packed for `packedGemm` at the same offsets as in
    /// `storage` (nil on CPUs without AVX-512; the other tensors' ranges stay unused).
    private let packedStorage: UnsafeMutablePointer<Float>?
    private struct BlockWeights {
        var expand: UnsafeMutablePointer<Float>?, expandBias: UnsafeMutablePointer<Float>?
        var depthwise: UnsafeMutablePointer<Float>, depthwiseBias: UnsafeMutablePointer<Float>
        var project: UnsafeMutablePointer<Float>, projectBias: UnsafeMutablePointer<Float>
    }
    private let stem: (w: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>)
    private let blockWeights: [BlockWeights]
    private let head: (w: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>)
    private let classifier: (w: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>)
    private var workspaces: [Workspace] = []

    /// When true, every image is computed in the same horizontal bands (one per thread, fixed
    /// and equal boundaries): an image a worker runs whole goes through all the bands in
    /// turn, block by block, and a leftover image is split across the workers band by band.
    /// Either way it issues the same products, so an image's features do not depend on the
    /// batch it came in nor on the call (a product over other rows can differ in its last
    /// bits), at the price of the leftover images' speed balancing. `Detector` sets it.
    /// Set it before the first call; it is not meant to change while calls run.
    public var fixedBands = false
    private let workspaceLock = Mutex()

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
        // Each tensor starts on a 64-byte boundary (16 floats), in `storage` and in its packed copy.
        func aligned(_ n: Int) -> Int { (n + 15) & ~15 }
        storageCount = tensors.reduce(0) { $0 + aligned($1.count) }
        let base = EfficientNetLite.allocateAligned(storageCount)
        storage = base
        var pointers: [UnsafeMutablePointer<Float>] = []
        var p = base
        for t in tensors {
            t.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: t.count) }
            (p + t.count).update(repeating: 0, count: aligned(t.count) - t.count)
            pointers.append(p)
            p += aligned(t.count)
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
            let packed = EfficientNetLite.allocateAligned(storageCount)
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
            packedStorage = packed
        } else {
            packedStorage = nil
        }
    }

    deinit {
        storage.deallocate()
        packedStorage?.deallocate()
    }

    /// `count` floats on a 64-byte boundary (a cache line: the direct product's vector loads
    /// of packed weights never straddle two), zero-filled.
    private static func allocateAligned(_ count: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        let p = raw.bindMemory(to: Float.self, capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
        return p
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

    private func validateBatch(count: Int, height: Int, width: Int) throws(BGADError) {
        guard count >= 1 else { throw .invalid("backbone: no images given (count \(count))") }
        guard height >= 1, width >= 1 else { throw .invalid("backbone: input size must be positive, got \(height)×\(width)") }
        guard height <= Self.maximumInputSide, width <= Self.maximumInputSide else {
            throw .invalid("backbone: input size \(height)×\(width) exceeds \(Self.maximumInputSide)")
        }
    }

    private func validateImages(count: Int, height: Int, width: Int, channels: Int) throws(BGADError) {
        guard channels == 1 || channels == 3 else {
            throw .invalid("backbone: images must have 1 (gray) or 3 (RGB) channels, got \(channels)")
        }
        guard height >= 1, width >= 1 else { throw .invalid("backbone: images are empty (\(height)×\(width))") }
        guard height <= 1 << 16, width <= 1 << 16 else { throw .invalid("backbone: images of \(height)×\(width) are too large") }
    }

    private func requireFiniteInput(_ p: UnsafePointer<Float>, _ n: Int) throws(BGADError) {
        try requireFinite(UnsafeBufferPointer(start: p, count: n), "backbone: input")
    }

    private struct LevelPlan {
        var deepest: Int
        var byBlock: [Int: (output: UnsafeMutablePointer<Float>, channels: Int)]
    }

    private func levelPlan(strides: [Int], outputs: [UnsafeMutablePointer<Float>]) throws(BGADError) -> LevelPlan {
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

    private typealias Loader = (Int, UnsafeMutablePointer<Float>, Workspace) -> Void
    /// (image, block, map HWC, h, w, pixels to copy)
    private typealias Emitter = (Int, Int, UnsafePointer<Float>, Int, Int, Range<Int>) -> Void

    private func preprocessedLoader(_ input: UnsafePointer<Float>, _ layout: Layout, _ h: Int, _ w: Int) -> Loader {
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

    private func imageLoader(_ images: UnsafePointer<UInt8>, _ h: Int, _ w: Int, _ c: Int, _ ih: Int, _ iw: Int) -> Loader {
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

    private func emitter(_ plan: LevelPlan, count: Int, height: Int, width: Int) -> Emitter {
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

    // MARK: - Forward pass

    /// Reusable buffers for one image of one input size.
    final class Workspace {
        let height: Int, width: Int, bands: Int
        let input: UnsafeMutablePointer<Float>    // H × W × 3
        let resized: UnsafeMutablePointer<UInt8>  // H × W × 3
        let columns: UnsafeMutablePointer<Float>  // stem im2col
        let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>  // block in/out
        let head: UnsafeMutablePointer<Float>     // head activations (classification)
        let pooled: UnsafeMutablePointer<Float>   // one row of 1280 per band
        /// Per band: expanded rows of the current tile (with the depthwise halo) and the
        /// depthwise output of the tile; both stay in cache.
        let tileExpanded: [UnsafeMutablePointer<Float>], tileDepthwise: [UnsafeMutablePointer<Float>]
        /// Output rows per tile, per block.
        let tileRows: [Int]
        /// Where band `b` ends, as a fraction of every map's rows (the last is 1), and each
        /// band's busy time (its forward pass without barrier waits) on the last image.
        /// `run` moves the boundaries towards the bands' measured speeds, so that a core the
        /// machine slows down (another VM on its sibling, say) gets fewer rows.
        var bandEnds: [Double]
        let bandBusy: UnsafeMutablePointer<Double>

        /// Floats of expanded activations a tile aims to keep (≈ 1 MB, within L2).
        static let tileBudget = 1 << 18

        init(height: Int, width: Int, bands: Int, blocks: [Block]) {
            self.height = height
            self.width = width
            self.bands = bands
            bandEnds = (1...max(bands, 1)).map { Double($0) / Double(max(bands, 1)) }
            bandBusy = .allocate(capacity: max(bands, 1))
            bandBusy.initialize(repeating: 0, count: max(bands, 1))
            let stemY = SamePadding(size: height, kernel: 3, stride: 2), stemX = SamePadding(size: width, kernel: 3, stride: 2)
            var h = stemY.output, w = stemX.output
            var maxXY = h * w * EfficientNetLite.stemChannels, maxE = 1, maxD = 1
            var rows: [Int] = []
            for b in blocks {
                let mid = b.middleChannels
                let oh = (h + b.stride - 1) / b.stride, ow = (w + b.stride - 1) / b.stride
                let t = max(1, min(oh, (Workspace.tileBudget / (w * mid) - b.kernel) / b.stride))
                rows.append(t)
                maxE = max(maxE, min(h, t * b.stride + b.kernel) * w * mid)
                maxD = max(maxD, t * ow * mid)
                h = oh
                w = ow
                maxXY = max(maxXY, h * w * b.outputChannels)
            }
            tileRows = rows
            input = .allocate(capacity: height * width * 3)
            resized = .allocate(capacity: height * width * 3)
            columns = .allocate(capacity: stemY.output * stemX.output * 27)
            x = .allocate(capacity: maxXY)
            y = .allocate(capacity: maxXY)
            head = .allocate(capacity: h * w * EfficientNetLite.headChannels)
            pooled = .allocate(capacity: EfficientNetLite.headChannels * bands)
            tileExpanded = (0..<bands).map { _ in .allocate(capacity: maxE) }
            tileDepthwise = (0..<bands).map { _ in .allocate(capacity: maxD) }
        }

        deinit {
            for p in [input, columns, x, y, head, pooled] + tileExpanded + tileDepthwise { p.deallocate() }
            bandBusy.deallocate()
            resized.deallocate()
        }
    }

    private func acquireWorkspace(height: Int, width: Int, bands: Int = 1) -> Workspace {
        let found: Workspace? = try! workspaceLock.locked { () throws(BGADError) -> Workspace? in
            if let i = workspaces.firstIndex(where: { $0.height == height && $0.width == width && $0.bands == bands }) {
                return workspaces.remove(at: i)
            }
            return nil
        }
        return found ?? Workspace(height: height, width: width, bands: bands, blocks: blocks)
    }

    private func releaseWorkspace(_ ws: Workspace) {
        try! workspaceLock.locked { () throws(BGADError) in
            workspaces.append(ws)
            if workspaces.count > 4 { workspaces.removeFirst() }
        }
    }

    private static let batchLock = Mutex()

    private func run(
        count: Int, height: Int, width: Int, deepest: Int, classify: Bool,
        load: @escaping Loader, emit: Emitter?, logits: UnsafeMutablePointer<Float>?
    ) throws(BGADError) {
        let threads = min(64, max(1, blasThreadCount))
        if threads == 1 {
            let ws = acquireWorkspace(height: height, width: width)
            for n in 0..<count {
                load(n, ws.input, ws)
                forward(ws, image: n, bands: 0..<1, of: 1, barrier: nil, deepest: deepest, classify: classify, emit: emit,
                        logits: logits.map { $0 + n * EfficientNetLite.classCount })
            }
            releaseWorkspace(ws)
            return
        }
        // Every worker calls single-threaded BLAS. Whole rounds of `threads` images run one
        // image per worker; the remaining images run one at a time in horizontal bands, one
        // band per worker. With `fixedBands`, an image a worker runs whole still runs in the
        // same fixed bands (all of them, block by block), so it gets the numbers it would
        // get split across the workers.
        let bandsPerImage = fixedBands ? threads : 1
        let fixedEnds = (1...threads).map { Double($0) / Double(threads) }
        try EfficientNetLite.batchLock.locked { () throws(BGADError) in
            let saved = blasThreadCount
            blasThreadCount = 1
            defer { blasThreadCount = saved }
            let whole = count - count % threads
            if whole > 0 {
                runThreads(threads) { worker in
                    let ws = self.acquireWorkspace(height: height, width: width, bands: bandsPerImage)
                    if self.fixedBands { ws.bandEnds = fixedEnds }
                    var n = worker
                    while n < whole {
                        load(n, ws.input, ws)
                        self.forward(ws, image: n, bands: 0..<bandsPerImage, of: bandsPerImage, barrier: nil, deepest: deepest,
                                     classify: classify, emit: emit, logits: logits.map { $0 + n * EfficientNetLite.classCount })
                        n += threads
                    }
                    self.releaseWorkspace(ws)
                }
            }
            if whole < count {
                let ws = acquireWorkspace(height: height, width: width, bands: threads)
                if fixedBands { ws.bandEnds = fixedEnds }
                let barrier = Barrier(threads)
                for n in whole..<count {
                    load(n, ws.input, ws)
                    runThreads(threads) { band in
                        self.forward(ws, image: n, bands: band..<(band + 1), of: threads, barrier: barrier, deepest: deepest,
                                     classify: classify, emit: emit,
                                     logits: logits.map { $0 + n * EfficientNetLite.classCount })
                    }
                    if !fixedBands { EfficientNetLite.rebalance(ws) }
                }
                releaseWorkspace(ws)
            }
        }
    }

    /// `out = ReLU6?(bias + skip? + A · W)` for `rows` pixels: `out` is first filled with
    /// the bias (plus the skip), then one `sgemm` accumulates into it (β = 1), so no pass
    /// is spent zeroing the output or adding the bias afterwards.
    @inline(__always)
    private func conv1x1(_ a: UnsafePointer<Float>, rows: Int, inputs k: Int, _ w: UnsafePointer<Float>, outputs c: Int,
                         bias: UnsafePointer<Float>, skip: UnsafePointer<Float>? = nil, relu6: Bool,
                         into out: UnsafeMutablePointer<Float>) {
        if rows == 0 { return }
        if let packedStorage, VectorISA.useAVX512, PackedMatrix.canPack(rows: k, columns: c) {
            var epilogue = PackedGemmEpilogue()
            epilogue.bias = UnsafePointer(bias)
            epilogue.skip = skip
            epilogue.skipStride = c
            epilogue.clamp = relu6 ? 2 : 0
            packedGemm(m: rows, n: c, k: k, a, lda: k, packed: packedStorage + (w - UnsafePointer(storage)), epilogue, out, ldc: c)
            return
        }
        let avx2 = VectorISA.useAVX2
        if avx2 {
            fillRowsAVX2(out, rows: rows, channels: c, bias: bias, skip: skip)
        } else if let skip {
            for r in 0..<rows {
                let row = out + r * c, s = skip + r * c
                for ch in 0..<c { row[ch] = bias[ch] + s[ch] }
            }
        } else {
            for r in 0..<rows {
                let row = out + r * c
                for ch in 0..<c { row[ch] = bias[ch] }
            }
        }
        sgemm(m: rows, n: c, k: k, a, lda: k, w, ldb: c, beta: 1, out, ldc: c)
        if relu6 {
            if avx2 { relu6InPlaceAVX2(out, count: rows * c) } else { relu6InPlace(out, count: rows * c) }
        }
    }

    /// Band `b`'s rows of an `n`-row map: from the previous band's end to its own
    /// (`Workspace.bandEnds`, fractions of the rows).
    @inline(__always)
    static func band(_ n: Int, _ b: Int, _ ends: [Double]) -> Range<Int> {
        let lo = b == 0 ? 0 : min(n, Int((ends[b - 1] * Double(n)).rounded()))
        let hi = b == ends.count - 1 ? n : min(n, Int((ends[b] * Double(n)).rounded()))
        return lo..<max(lo, hi)
    }

    /// Moves the band boundaries towards equal finishing times: each band's new share of
    /// the rows is proportional to its measured speed (share ÷ busy time), averaged with its
    /// old share, and kept within [½, 2] × an equal share.
    static func rebalance(_ ws: Workspace) {
        let bands = ws.bands
        guard bands > 1 else { return }
        var shares = [Double](repeating: 0, count: bands)
        var speeds = shares
        var previous = 0.0
        for b in 0..<bands {
            shares[b] = ws.bandEnds[b] - previous
            previous = ws.bandEnds[b]
            guard ws.bandBusy[b] > 0 else { return }
            speeds[b] = shares[b] / ws.bandBusy[b]
        }
        let total = speeds.reduce(0, +)
        let equal = 1 / Double(bands)
        var next = (0..<bands).map { b in min(2 * equal, max(equal / 2, 0.5 * shares[b] + 0.5 * speeds[b] / total)) }
        let sum = next.reduce(0, +)
        var end = 0.0
        for b in 0..<bands {
            next[b] /= sum
            end += next[b]
            ws.bandEnds[b] = b == bands - 1 ? 1 : end
        }
    }

    /// The forward pass of one image, or of the bands `run` of `bands` horizontal bands of it.
    ///
    /// A band computes its own output rows of every block; the depthwise convolution needs
    /// a few rows of the block input beyond the band (the halo), which the band expands
    /// itself, so when the bands run on different threads they meet at `barrier` once per
    /// block, before it starts. One thread may also run several bands (all of them, say),
    /// block by block: every band then issues the same products, of the same shapes, as on
    /// a thread of its own, so the numbers do not depend on how the bands were spread.
    private func forward(
        _ ws: Workspace, image: Int, bands run: Range<Int>, of bands: Int, barrier: Barrier?, deepest: Int,
        classify: Bool, emit: Emitter?, logits: UnsafeMutablePointer<Float>?
    ) {
        let height = ws.height, width = ws.width
        // Stem: im2col (ky, kx, cin) then one GEMM per band.
        let py = SamePadding(size: height, kernel: 3, stride: 2), px = SamePadding(size: width, kernel: 3, stride: 2)
        var h = py.output, w = px.output
        let input = ws.input, col = ws.columns
        let start = monotonicSeconds()
        var waited = 0.0
        defer { if run.count == 1 { ws.bandBusy[run.lowerBound] = monotonicSeconds() - start - waited } }
        let ends = ws.bandEnds
        var x = ws.x, y = ws.y
        let stemC = EfficientNetLite.stemChannels
        for b in run {
            let rows = EfficientNetLite.band(h, b, ends)
            for oy in rows {
                for ox in 0..<w {
                    let patch = col + (oy * w + ox) * 27
                    let ix0 = ox * 2 - px.before
                    let inside = ix0 >= 0 && ix0 + 3 <= width
                    for ky in 0..<3 {
                        let iy = oy * 2 + ky - py.before
                        let d = patch + ky * 9
                        if iy < 0 || iy >= height {
                            d.update(repeating: 0, count: 9)
                        } else if inside {
                            // The row's three taps are 9 consecutive floats of the HWC input.
                            d.update(from: input + (iy * width + ix0) * 3, count: 9)
                        } else {
                            for kx in 0..<3 {
                                let ix = ix0 + kx
                                if ix >= 0 && ix < width {
                                    let s = input + (iy * width + ix) * 3
                                    d[3 * kx] = s[0]; d[3 * kx + 1] = s[1]; d[3 * kx + 2] = s[2]
                                } else {
                                    d[3 * kx] = 0; d[3 * kx + 1] = 0; d[3 * kx + 2] = 0
                                }
                            }
                        }
                    }
                }
            }
            let p0 = rows.lowerBound * w, np = rows.count * w
            if np > 0 {
                conv1x1(col + p0 * 27, rows: np, inputs: 27, stem.w, outputs: stemC, bias: stem.b, relu6: true, into: x + p0 * stemC)
            }
        }

        for (i, blk) in blocks.enumerated() where i <= deepest {
            // The previous block's output must be complete: the halo rows come from the
            // neighbouring bands.
            if let barrier {
                let t = monotonicSeconds()
                barrier.wait()
                waited += monotonicSeconds() - t
            }
            let bw = blockWeights[i]
            let mid = blk.middleChannels, cin = blk.inputChannels, cout = blk.outputChannels
            let k = blk.kernel, s = blk.stride
            let pad = SamePadding(size: h, kernel: k, stride: s)
            let oh = pad.output, ow = (w + s - 1) / s
            for b in run {
                let tileE = ws.tileExpanded[b], tileD = ws.tileDepthwise[b]
                let rows = EfficientNetLite.band(oh, b, ends)
                // Tiles of output rows: expand only the input rows a tile needs (keeping the
                // rows shared with the next tile), depthwise, project; the expanded map never
                // leaves the cache.
                var have = 0..<0  // input rows held in tileE, from its start
                var r0 = rows.lowerBound
                while r0 < rows.upperBound {
                    let r1 = min(rows.upperBound, r0 + ws.tileRows[i])
                    let lo = max(0, r0 * s - pad.before), hi = min(h, (r1 - 1) * s - pad.before + k)
                    let dwInput: UnsafePointer<Float>  // virtual origin: row 0 of the expanded map
                    if let e = bw.expand, let eb = bw.expandBias {
                        if have.contains(lo) && hi >= have.upperBound {
                            let keep = have.upperBound - lo
                            if lo > have.lowerBound && keep > 0 {
                                memmove(tileE, tileE + (lo - have.lowerBound) * w * mid, keep * w * mid * MemoryLayout<Float>.stride)
                            }
                            have = lo..<have.upperBound
                        } else {
                            have = lo..<lo
                        }
                        let fresh = have.upperBound..<hi
                        conv1x1(x + fresh.lowerBound * w * cin, rows: fresh.count * w, inputs: cin, e, outputs: mid,
                                bias: eb, relu6: true, into: tileE + (fresh.lowerBound - lo) * w * mid)
                        have = lo..<hi
                        dwInput = UnsafePointer(tileE - lo * w * mid)
                    } else {
                        dwInput = UnsafePointer(x)
                    }
                    depthwiseConvolutionReLU6(input: dwInput, height: h, width: w, channels: mid, kernel: k, stride: s,
                                              weights: bw.depthwise, bias: bw.depthwiseBias,
                                              output: tileD - r0 * ow * mid, rows: r0..<r1)
                    let q0 = r0 * ow
                    conv1x1(tileD, rows: (r1 - r0) * ow, inputs: mid, bw.project, outputs: cout, bias: bw.projectBias,
                            skip: blk.hasSkip ? UnsafePointer(x + q0 * cout) : nil, relu6: false, into: y + q0 * cout)
                    r0 = r1
                }
            }
            h = oh
            w = ow
            swap(&x, &y)
            let first = EfficientNetLite.band(h, run.lowerBound, ends), last = EfficientNetLite.band(h, run.upperBound - 1, ends)
            emit?(image, i, x, h, w, (first.lowerBound * w)..<(max(first.lowerBound, last.upperBound) * w))
        }
        guard classify, let logits else { return }
        let last = blocks[blocks.count - 1].outputChannels
        let hc = EfficientNetLite.headChannels
        let headOut = ws.head
        for b in run {
            let rows = EfficientNetLite.band(h, b, ends)
            let p0 = rows.lowerBound * w, np = rows.count * w
            let pooled = ws.pooled + b * hc
            pooled.update(repeating: 0, count: hc)
            if np > 0 {
                conv1x1(x + p0 * last, rows: np, inputs: last, head.w, outputs: hc, bias: head.b, relu6: true, into: headOut + p0 * hc)
                for p in p0..<(p0 + np) {
                    let row = headOut + p * hc
                    for ch in 0..<hc { pooled[ch] += row[ch] }
                }
            }
        }
        barrier?.wait()
        guard run.lowerBound == 0 else { return }
        let pooled = ws.pooled
        for other in 1..<max(bands, 1) {
            let part = ws.pooled + other * hc
            for ch in 0..<hc { pooled[ch] += part[ch] }
        }
        let inv = 1 / Float(h * w)
        for ch in 0..<hc { pooled[ch] *= inv }
        let classes = EfficientNetLite.classCount
        logits.update(from: classifier.b, count: classes)
        sgemm(m: 1, n: classes, k: hc, pooled, lda: hc, classifier.w, ldb: classes, beta: 1, logits, ldc: classes)
    }
}
