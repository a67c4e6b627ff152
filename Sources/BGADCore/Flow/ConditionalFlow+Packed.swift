#if canImport(Glibc)
import Glibc
#endif

/// Inference with the AVX-512 direct product (`packedGemm`): the packed weights, the
/// separable condition shares, and scoring on the flow's own positional condition.
extension ConditionalFlow {
    /// `logLikelihood` of the `gridHeight × gridWidth` vectors of one image (row `h·W + w`),
    /// each conditioned on its position's `positionalEncoding(height:width:dim: condDim)`:
    /// the table and its first-layer shares are built once per grid size and parameter
    /// version, and the table, built here, needs no check. `x` is checked (finite values).
    public func logLikelihood(x: UnsafePointer<Float>, gridHeight: Int, gridWidth: Int,
                              ell: UnsafeMutablePointer<Float>) throws(BGADError) {
        guard gridHeight >= 1, gridWidth >= 1 else {
            throw .invalid("grid must be at least 1×1, got \(gridHeight)×\(gridWidth)")
        }
        let (count, overflow) = gridHeight.multipliedReportingOverflow(by: gridWidth)
        if overflow { throw .invalid("grid: \(gridHeight) × \(gridWidth) overflows") }
        try validateVectors(x, count: count)
        if positional == nil || positional!.height != gridHeight || positional!.width != gridWidth {
            positional = (gridHeight, gridWidth, positionalEncoding(height: gridHeight, width: gridWidth, dim: condDim),
                          (0..<Int32(count)).map { $0 })
        }
        let dim = self.dim, key = (height: gridHeight, width: gridWidth)
        try positional!.table.withUnsafeBufferPointer { table throws(BGADError) in
            try positional!.index.withUnsafeBufferPointer { index throws(BGADError) in
                try run(x, count: count, condTable: table.baseAddress!, condRows: count, condIndex: index.baseAddress!,
                        positionalGrid: key) { start, n, zc, ld in
                    ConditionalFlow.writeEll(dim: dim, z: zc, logdet: ld, count: n, ell: ell + start)
                }
            }
        }
    }

    /// The packed inference weights (see `packedWeights`) when the AVX-512 product is on and
    /// every product of a block has a width it can take; else nil (OpenBLAS runs).
    func preparePacked() throws(BGADError) -> UnsafePointer<Float>? {
        guard VectorISA.useAVX512, let b0 = blocks.first, b0.canPack else { return nil }
        if packedVersion != version {
            prepareAffine()
            let per = b0.packedCount
            let out = try packedWeights.reserve(blocks.count * per)
            for (k, b) in blocks.enumerated() {
                b.pack(params: params.pointer, m: foldedAffine(k), into: out + k * per)
            }
            packedVersion = version
        }
        return UnsafePointer(packedWeights.pointer)
    }

    /// The inference condition shares in separable form (`SeparableGrid`): the grid and,
    /// per block, its column part then its row part (`CouplingBlock.separableParts`), or nil
    /// when the table has no such structure over all its rows (or it would not pay). Cached
    /// while table and parameters are unchanged (`key`: the table is the flow's positional
    /// condition of that grid size, known without comparing it).
    func inferenceGridShares(condTable: UnsafePointer<Float>, condRows: Int,
                             grid key: (height: Int, width: Int)? = nil) throws(BGADError)
        -> (grid: SeparableGrid, parts: UnsafePointer<Float>)? {
        if gridKey.holds(condTable, rows: condRows, dim: condDim, version: version, grid: key) {
            return inferenceGrid.map { ($0, UnsafePointer(gridShares.pointer)) }
        }
        gridKey.invalidate()
        let all = [Int32](unsafeUninitializedCapacity: condRows) { buf, n in
            for r in 0..<condRows { buf[r] = Int32(r) }
            n = condRows
        }
        var grid = all.withUnsafeBufferPointer {
            SeparableGrid.detect(table: condTable, rows: condRows, dim: condDim, used: $0.baseAddress!, usedCount: condRows)
        }
        if let g = grid, g.width + g.height >= condRows { grid = nil }
        if let grid {
            let hidden = blocks[0].hidden, half = condDim / 2, per = (grid.width + grid.height) * hidden
            let out = try gridShares.reserve(blockCount * per)
            for (k, b) in blocks.enumerated() {
                b.separableParts(params: params.pointer, grid: grid, colHalves: condTable, colStride: condDim,
                                 rowHalves: condTable + half, rowStride: grid.width * condDim,
                                 colPart: out + k * per, rowPart: out + k * per + grid.width * hidden)
            }
        }
        inferenceGrid = grid
        try gridKey.record(condTable, rows: condRows, dim: condDim, version: version, grid: key)
        return grid.map { ($0, UnsafePointer(gridShares.pointer)) }
    }

}
