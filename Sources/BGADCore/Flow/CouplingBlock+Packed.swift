/// The coupling block's inference on AVX-512 CPUs: its three products' weights packed for
/// `packedGemm`, and the subnet with the condition share added in the product's epilogue.
extension CouplingBlock {
    /// Whether the block's three inference products have widths `packedGemm` takes.
    var canPack: Bool {
        PackedMatrix.canPack(rows: len1, columns: hidden) && PackedMatrix.canPack(rows: hidden, columns: outDim)
            && PackedMatrix.canPack(rows: dim, columns: dim)
    }

    /// Floats of the block's packed inference weights: W1xᵀ, W2ᵀ, then the affine's M, each
    /// starting on a 64-byte boundary (16 floats) of the 64-byte-aligned buffer.
    var packedCount: Int { packedAffineOffset + PackedMatrix.alignedCount(dim * dim) }

    /// Offset of W2ᵀ in the block's packed weights.
    var packedSecondOffset: Int { PackedMatrix.alignedCount(len1 * hidden) }

    /// Offset of M in the block's packed weights.
    var packedAffineOffset: Int { packedSecondOffset + PackedMatrix.alignedCount(hidden * outDim) }

    /// Packs W1xᵀ (len1 × hidden), W2ᵀ (hidden × outDim) and `m` (the affine's C × C matrix,
    /// the first `C × C` floats of the folded affine, `prepareAffine`) into `out` (`packedCount` floats) for `packedGemm`.
    func pack(params: UnsafePointer<Float>, m: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        PackedMatrix.pack(params + w1, rows: len1, columns: hidden, ld: inDim, transposed: true, into: out)
        PackedMatrix.pack(params + w2, rows: hidden, columns: outDim, ld: hidden, transposed: true,
                          into: out + packedSecondOffset)
        PackedMatrix.pack(m, rows: dim, columns: dim, ld: dim, transposed: false, into: out + packedAffineOffset)
    }

    /// `subnet` with the packed weights on a separable condition grid: row `i`'s share is
    /// `colPart[colOf[i]] + rowPart[rowOf[i]]` (`separableParts`), added in the product's epilogue.
    func packedSubnet(
        params: UnsafePointer<Float>, x: UnsafePointer<Float>, count n: Int, packed: UnsafePointer<Float>,
        colPart: UnsafePointer<Float>, colOf: UnsafePointer<Int32>, rowPart: UnsafePointer<Float>,
        rowOf: UnsafePointer<Int32>, r: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>
    ) {
        var first = PackedGemmEpilogue()
        first.table = colPart
        first.index = colOf
        first.table2 = rowPart
        first.index2 = rowOf
        first.tableStride = hidden
        first.clamp = 1
        packedSecondLayer(params: params, x: x, count: n, packed: packed, first: first, r: r, q: q)
    }

    /// The packed subnet's two products: `r = clamp(start + x1·W1xᵀ)` with `first`'s start
    /// and clamp, then `q = r·W2ᵀ + b2`.
    func packedSecondLayer(
        params: UnsafePointer<Float>, x: UnsafePointer<Float>, count n: Int, packed: UnsafePointer<Float>,
        first: PackedGemmEpilogue, r: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>
    ) {
        packedGemm(m: n, n: hidden, k: len1, x, lda: dim, packed: packed, first, r, ldc: hidden)
        var second = PackedGemmEpilogue()
        second.bias = params + b2
        packedGemm(m: n, n: outDim, k: hidden, r, lda: hidden, packed: packed + packedSecondOffset, second, q, ldc: outDim)
    }
}
