#if canImport(Glibc)
import Glibc
#endif
import BGADKernelsAVX2

/// The backbone's forward pass: images in rounds over the threads, the stem, the blocks in
/// tiles of output rows (expansion, depthwise, projection), the head.
extension EfficientNetLite {
    static let batchLock = Mutex()

    func run(
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
            packedGemm(m: rows, n: c, k: k, a, lda: k, packed: packedStorage.pointer + (w - UnsafePointer(storage.pointer)),
                       epilogue, out, ldc: c)
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
                            // The row's three taps are 9 consecutive floats of the HWC input,
                            // copied in registers (a library call per 9 floats costs more).
                            let src = input + (iy * width + ix0) * 3
                            UnsafeMutableRawPointer(d).storeBytes(
                                of: UnsafeRawPointer(src).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                            d[8] = src[8]
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
