/// The fitted detector's numbers as named float32 tensors, for writing the scoring pipeline
/// in another runtime (the ONNX exporter, `bgad.onnx_export`). This is the ONE place that
/// lists them; every value is the engine's own (the weights it runs, the folded affine maps
/// it applies, the condition table and interpolation tables it builds), so a graph written
/// from them computes what `Detector.predict` computes at the model size.
///
/// Names, shapes and meanings: `bgad.h`, section "Export" (the C users' documentation).
public struct DetectorTensor {
    /// Dotted name (see `bgad.h`).
    public let name: String
    /// Dimensions, row-major.
    public let shape: [Int]
    private let produce: () throws(BGADError) -> [Float]

    init(_ name: String, _ shape: [Int], _ produce: @escaping () throws(BGADError) -> [Float]) {
        self.name = name
        self.shape = shape
        self.produce = produce
    }

    /// Number of floats (the product of `shape`).
    public var count: Int { shape.reduce(1, *) }

    /// The values, row-major (computed on demand: listing names and shapes is cheap).
    public func values() throws(BGADError) -> [Float] { try produce() }
}

/// The backbone tensors of the last detector exported, decoded from its weight file once:
/// the C ABI hands out one tensor per call, and each call lists the tensors anew. Holds one
/// backbone's floats (≈ 19 MB for Lite0) until a detector with another backbone is exported.
private final class DecodedWeightCache: @unchecked Sendable {
    static let shared = DecodedWeightCache()
    private let lock = Mutex()
    private weak var owner: DetectorBackbone?
    private var tensors: [[Float]] = []

    /// Tensor `i` (file order) of `backbone`'s weight file.
    func tensor(_ i: Int, of backbone: DetectorBackbone) throws(BGADError) -> [Float] {
        try lock.locked { () throws(BGADError) in
            if owner !== backbone {
                owner = nil
                tensors = []
                tensors = try EfficientNetLiteWeightFile.decode(backbone.weightBytes, name: "the detector's \(backbone.name) weights").tensors
                owner = backbone
            }
            return tensors[i]
        }
    }
}

extension Detector {
    /// Every tensor the scoring pipeline uses, in a fixed order (see `DetectorTensor`).
    /// Throws when the detector is not fitted.
    public func exportedTensors() throws(BGADError) -> [DetectorTensor] {
        let f = try requireFitted()
        let c = configuration, s = c.imageSize
        guard let variant = EfficientNetLite.Variant(name: f.backbone.name) else {
            throw .invalid("backbone '\(f.backbone.name)' cannot be exported")
        }
        let calibration = f.model.calibration!
        var out: [DetectorTensor] = []
        func add(_ name: String, _ shape: [Int], _ produce: @escaping () throws(BGADError) -> [Float]) {
            out.append(DetectorTensor(name, shape, produce))
        }
        func constant(_ name: String, _ values: [Float]) { add(name, [values.count]) { values } }

        constant("config.image_size", [Float(s)])
        constant("config.strides", c.strides.map { Float($0) })
        constant("config.backbone", [Float(variant.rawValue)])
        // The backbone's loader: `(Float(pixel) − 127) / 128` (EfficientNetLite.imageLoader).
        constant("preprocess.offset", [127])
        constant("preprocess.scale", [128])

        // Backbone: the weight file's tensors, in the order of `variant.tensorShapes`.
        let backbone = f.backbone
        let shapes = variant.tensorShapes
        var next = 0
        func weight(_ name: String) {
            let i = next
            next += 1
            add(name, shapes[i]) { () throws(BGADError) in try DecodedWeightCache.shared.tensor(i, of: backbone) }
        }
        weight("backbone.stem.weight")
        weight("backbone.stem.bias")
        for (i, b) in variant.blocks.enumerated() {
            let p = "backbone.blocks.\(i)."
            constant(p + "stride", [Float(b.stride)])
            if b.expansion != 1 { weight(p + "expand.weight"); weight(p + "expand.bias") }
            weight(p + "depthwise.weight"); weight(p + "depthwise.bias")
            weight(p + "project.weight"); weight(p + "project.bias")
        }
        var levelBlocks: [Float] = []
        for st in c.strides {
            guard let l = variant.level(stride: st) else { throw .invalid("backbone '\(variant.name)' has no level at stride \(st)") }
            levelBlocks.append(Float(l.block))
        }
        constant("backbone.level_blocks", levelBlocks)

        // Flows, conditions and interpolation tables, level by level.
        for (l, flow) in f.model.flows.enumerated() {
            let g = f.backbone.network.featureSize(height: s, width: s, stride: c.strides[l])
            let p = "levels.\(l)."
            constant(p + "grid", [Float(g.height), Float(g.width)])
            add(p + "condition", [g.height * g.width, flow.condDim]) {
                positionalEncoding(height: g.height, width: g.width, dim: flow.condDim)
            }
            constant(p + "flow.clamp", [flow.clamp])
            for name in flow.parameterNames {
                add(p + "flow." + name, try flow.parameterShape(name)) { () throws(BGADError) in try flow.parameter(name) }
            }
            let dim = flow.dim
            for (k, block) in flow.blocks.enumerated() {
                // The engine's own folding (`CouplingBlock.prepareAffine`), into fresh buffers.
                let folded = { block.foldedAffine(params: flow.params.pointer, wp: flow.rotation(k)) }
                let q = p + "flow.module_list.\(k).affine."
                add(q + "matrix", [dim, dim]) { folded().m }
                add(q + "offset", [dim]) { folded().ob }
                add(q + "log_scale_sum", [1]) { [folded().logSum] }
            }
            let rows = LinearResizeTable(inSize: g.height, outSize: s), cols = LinearResizeTable(inSize: g.width, outSize: s)
            for (axis, t) in [("rows", rows), ("cols", cols)] {
                constant(p + "map.\(axis).lower", t.lower.map { Float($0) })
                constant(p + "map.\(axis).upper", t.upper.map { Float($0) })
                constant(p + "map.\(axis).weight", t.weight)
            }
        }

        constant("calibration.references", calibration.references)
        constant("calibration.max_normality", [calibration.maxNormality])
        constant("calibration.image_threshold", [Float(calibration.imageThreshold)])
        constant("calibration.pixel_threshold", [calibration.pixelThreshold])
        return out
    }
}
