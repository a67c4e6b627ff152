/// Parameter exchange by FrEIA's `SequenceINN` state-dict names (`docs/FLOW.md`, "Parameter exchange").
extension ConditionalFlow {
    /// Kind of a named tensor of one block.
    enum Tensor: CaseIterable {
        case w1, b1, w2, b2, globalScale, globalOffset, rotation

        var suffix: String {
            switch self {
            case .w1: return "subnet.0.weight"
            case .b1: return "subnet.0.bias"
            case .w2: return "subnet.2.weight"
            case .b2: return "subnet.2.bias"
            case .globalScale: return "global_scale"
            case .globalOffset: return "global_offset"
            case .rotation: return "w_perm"
            }
        }
    }

    /// FrEIA parameter names in a fixed order: for each block k,
    /// `module_list.{k}.subnet.0.weight`, `.subnet.0.bias`, `.subnet.2.weight`, `.subnet.2.bias`,
    /// `.global_scale`, `.global_offset`, `.w_perm` (the fixed rotation; `w_perm_inv = w_permᵀ`).
    public var parameterNames: [String] {
        ConditionalFlow.parameterLayout(dim: dim, condDim: condDim, blocks: blockCount).map { $0.name }
    }

    /// The names that are trained (every name except the rotations `w_perm`).
    public var trainableParameterNames: [String] {
        parameterNames.filter { !$0.hasSuffix(".w_perm") }
    }

    func lookup(_ name: String) throws(BGADError) -> (block: Int, tensor: Tensor) {
        let prefix = "module_list."
        guard name.hasPrefix(prefix) else { throw .invalid("unknown flow parameter '\(name)'") }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let k = Int(rest[rest.startIndex..<dot]),
              k >= 0, k < blockCount, String(rest[rest.startIndex..<dot]) == String(k) else {
            throw .invalid("unknown flow parameter '\(name)' (blocks are 0..<\(blockCount))")
        }
        let suffix = String(rest[rest.index(after: dot)...])
        guard let t = Tensor.allCases.first(where: { $0.suffix == suffix }) else {
            throw .invalid("unknown flow parameter '\(name)'")
        }
        return (k, t)
    }

    /// Names and PyTorch shapes of every tensor of a flow of this geometry, in
    /// `parameterNames` order, computed without building the flow (a file reader checks a
    /// file against it before allocating anything).
    static func parameterLayout(dim: Int, condDim: Int, blocks: Int) -> [(name: String, shape: [Int])] {
        let b = CouplingBlock(dim: dim, condDim: condDim, clamp: 1, offset: 0)
        var layout: [(name: String, shape: [Int])] = []
        for k in 0..<blocks {
            for t in Tensor.allCases { layout.append(("module_list.\(k).\(t.suffix)", shape(t, b))) }
        }
        return layout
    }

    /// PyTorch shape of a tensor of block geometry `b`.
    func shape(_ t: Tensor, _ b: CouplingBlock) -> [Int] { ConditionalFlow.shape(t, b) }

    /// PyTorch shape of a tensor of block geometry `b` (`b.dim` = the flow's width).
    static func shape(_ t: Tensor, _ b: CouplingBlock) -> [Int] {
        let dim = b.dim
        switch t {
        case .w1: return [b.hidden, b.inDim]
        case .b1: return [b.hidden]
        case .w2: return [b.outDim, b.hidden]
        case .b2: return [b.outDim]
        case .globalScale, .globalOffset: return [1, dim]
        case .rotation: return [dim, dim]
        }
    }

    /// Start of a tensor's storage (trainable buffer or rotations).
    func storage(_ t: Tensor, block k: Int, in buffer: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let b = blocks[k]
        switch t {
        case .w1: return buffer + b.w1
        case .b1: return buffer + b.b1
        case .w2: return buffer + b.w2
        case .b2: return buffer + b.b2
        case .globalScale: return buffer + b.g
        case .globalOffset: return buffer + b.o
        case .rotation: return rotations.pointer + k * dim * dim
        }
    }

    /// Shape of the named tensor (PyTorch layout: Linear weights are `(out, in)`).
    public func parameterShape(_ name: String) throws(BGADError) -> [Int] {
        let (k, t) = try lookup(name)
        return shape(t, blocks[k])
    }

    /// Number of floats of the named tensor.
    public func parameterCount(_ name: String) throws(BGADError) -> Int {
        try parameterShape(name).reduce(1, *)
    }

    /// Values of the named tensor, row-major.
    public func parameter(_ name: String) throws(BGADError) -> [Float] {
        let (k, t) = try lookup(name)
        let n = shape(t, blocks[k]).reduce(1, *)
        return Array(UnsafeBufferPointer(start: storage(t, block: k, in: params.pointer), count: n))
    }

    /// Sets the named tensor. Fails on a wrong count, a non-finite value, a global scale
    /// whose σ is not positive and finite, or a `w_perm` that is not orthogonal (|WWᵀ − I| > 1e-3).
    public func setParameter(_ name: String, _ values: [Float]) throws(BGADError) {
        let (k, t) = try lookup(name)
        let shp = shape(t, blocks[k])
        let n = shp.reduce(1, *)
        guard values.count == n else {
            throw .invalid("\(name): expected \(n) values (shape \(shp)), got \(values.count)")
        }
        try values.withUnsafeBufferPointer { (v) throws(BGADError) in
            if let i = firstNonFinite(v.baseAddress!, count: n) { throw .invalid("\(name): element \(i) is \(v[i])") }
        }
        if t == .globalScale {
            for (i, g) in values.enumerated() {
                let s = CouplingBlock.globalScale(g)
                if !(s > 0 && s.isFinite) { throw .invalid("\(name): element \(i) = \(g) gives a global scale of \(s)") }
            }
        }
        if t == .rotation {
            // W·Wᵀ = I through one matrix product (O(C³) but at BLAS speed, not a scalar loop).
            let product = try FloatBuffer(capacity: dim * dim)
            values.withUnsafeBufferPointer { v in
                sgemm(transB: true, m: dim, n: dim, k: dim, v.baseAddress!, lda: dim, v.baseAddress!, ldb: dim,
                      product.pointer, ldc: dim)
            }
            for i in 0..<dim {
                for j in 0..<dim {
                    let dot = product.pointer[i * dim + j]
                    if !(abs(dot - (i == j ? 1 : 0)) <= 1e-3) {
                        throw .invalid("\(name): not orthogonal (row \(i) · row \(j) = \(dot))")
                    }
                }
            }
        }
        storage(t, block: k, in: params.pointer).update(from: values, count: n)
        version += 1
    }

    /// Gradient of the last `backward` for the named trainable tensor. Fails for `w_perm`
    /// (fixed) and before any `backward`.
    public func parameterGradient(_ name: String) throws(BGADError) -> [Float] {
        let (k, t) = try lookup(name)
        if t == .rotation { throw .invalid("\(name) is fixed and has no gradient") }
        guard gradientsValid else { throw .invalid("no gradient computed yet") }
        let n = shape(t, blocks[k]).reduce(1, *)
        return Array(UnsafeBufferPointer(start: storage(t, block: k, in: grads.pointer), count: n))
    }
}
