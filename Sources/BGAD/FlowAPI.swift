import BGADCore
#if canImport(Glibc)
import Glibc
#endif

/// C entry points of the conditional normalizing flow (see `bgad.h`, "Flow").
///
/// A `bgad_flow_t *` is a retained `ConditionalFlow` (`Handles.swift`), released by
/// `bgad_flow_free`.

private func flowFrom(_ handle: OpaquePointer?) throws(BGADError) -> ConditionalFlow {
    try object(handle, ConditionalFlow.self, "flow handle")
}

/// Validated inputs of a batch call: x, count, the condition table and index (identity
/// rows deduplicated when `condIndex` is NULL).
private struct Batch {
    var count: Int
    var x: UnsafePointer<Float>
    var table: UnsafePointer<Float>
    var rows: Int
    var index: UnsafePointer<Int32>
}

private func withBatch<R>(
    _ flow: ConditionalFlow, _ x: UnsafePointer<Float>?, _ count: Int64, _ cond: UnsafePointer<Float>?,
    _ condRows: Int64, _ condIndex: UnsafePointer<Int32>?, xName: String = "x",
    _ body: (Batch) throws(BGADError) -> R
) throws(BGADError) -> R {
    let n = try requireSize(count, "count")
    _ = try checkedProduct([n, flow.dim], xName)
    let xp = try require(x, xName)
    let c = try require(cond, "cond")
    if let idx = condIndex {
        let rows = try requireSize(condRows, "cond_rows")
        if rows < 1 { throw .invalid("cond_rows must be ≥ 1, got 0") }
        _ = try checkedProduct([rows, flow.condDim], "cond")
        return try body(Batch(count: n, x: xp, table: c, rows: rows, index: idx))
    }
    if condRows != count {
        throw .invalid("cond has \(condRows) rows but \(xName) has \(count) vectors (cond_index is NULL: one row per vector)")
    }
    _ = try checkedProduct([n, flow.condDim], "cond")
    if n == 0 {
        var zero: [Float] = [Float](repeating: 0, count: flow.condDim)
        var idx: [Int32] = [0]
        return try zero.withUnsafeMutableBufferPointer { (t) throws(BGADError) -> R in
            try idx.withUnsafeMutableBufferPointer { (i) throws(BGADError) -> R in
                try body(Batch(count: 0, x: xp, table: t.baseAddress!, rows: 1, index: i.baseAddress!))
            }
        }
    }
    if let i = firstNonFinite(c, count: n * flow.condDim) {
        throw .invalid("cond: element \(i) (row \(i / flow.condDim), channel \(i % flow.condDim)) is \(c[i])")
    }
    let (table, index) = deduplicateConditions(rows: c, count: n, dim: flow.condDim)
    return try table.withUnsafeBufferPointer { (t) throws(BGADError) -> R in
        try index.withUnsafeBufferPointer { (i) throws(BGADError) -> R in
            try body(Batch(count: n, x: xp, table: t.baseAddress!, rows: table.count / flow.condDim, index: i.baseAddress!))
        }
    }
}

private func objectiveFrom(_ value: Int32) throws(BGADError) -> FlowObjective {
    guard let o = FlowObjective(rawValue: value) else {
        throw .invalid("objective must be 0 (phase-1 loss) or 1 (negative log-likelihood), got \(value)")
    }
    return o
}

private func nameFrom(_ name: UnsafePointer<CChar>?) throws(BGADError) -> String {
    String(cString: try require(name, "name"))
}

@_cdecl("bgad_flow_create")
public func bgad_flow_create(_ dim: Int64, _ condDim: Int64, _ blocks: Int64, _ clamp: Float, _ seed: UInt64,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        o.pointee = nil
        guard dim >= 0, dim <= Int64(Int32.max), condDim >= 0, condDim <= Int64(Int32.max), blocks >= 0, blocks <= 4096 else {
            throw .invalid("flow sizes out of range: dim \(dim), cond_dim \(condDim), blocks \(blocks)")
        }
        let flow = try ConditionalFlow(dim: Int(dim), condDim: Int(condDim), blocks: Int(blocks), clamp: clamp, seed: seed)
        o.pointee = retainedHandle(flow)
    }
}

@_cdecl("bgad_flow_free")
public func bgad_flow_free(_ handle: OpaquePointer?) -> Int32 {
    releaseHandle(handle, ConditionalFlow.self)
}

@_cdecl("bgad_flow_shape")
public func bgad_flow_shape(_ handle: OpaquePointer?, _ dim: UnsafeMutablePointer<Int64>?, _ condDim: UnsafeMutablePointer<Int64>?,
                            _ blocks: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        try require(dim, "dim").pointee = Int64(f.dim)
        try require(condDim, "cond_dim").pointee = Int64(f.condDim)
        try require(blocks, "blocks").pointee = Int64(f.blockCount)
    }
}

@_cdecl("bgad_flow_forward")
public func bgad_flow_forward(_ handle: OpaquePointer?, _ x: UnsafePointer<Float>?, _ count: Int64,
                              _ cond: UnsafePointer<Float>?, _ condRows: Int64, _ condIndex: UnsafePointer<Int32>?,
                              _ z: UnsafeMutablePointer<Float>?, _ logdet: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let zp = try require(z, "z"), lp = try require(logdet, "logdet")
        try withBatch(f, x, count, cond, condRows, condIndex) { (b) throws(BGADError) in
            try f.forward(x: b.x, count: b.count, condTable: b.table, condRows: b.rows, condIndex: b.index, z: zp, logdet: lp)
        }
    }
}

@_cdecl("bgad_flow_log_likelihood")
public func bgad_flow_log_likelihood(_ handle: OpaquePointer?, _ x: UnsafePointer<Float>?, _ count: Int64,
                                     _ cond: UnsafePointer<Float>?, _ condRows: Int64, _ condIndex: UnsafePointer<Int32>?,
                                     _ ell: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let e = try require(ell, "ell")
        try withBatch(f, x, count, cond, condRows, condIndex) { (b) throws(BGADError) in
            try f.logLikelihood(x: b.x, count: b.count, condTable: b.table, condRows: b.rows, condIndex: b.index, ell: e)
        }
    }
}

@_cdecl("bgad_flow_inverse")
public func bgad_flow_inverse(_ handle: OpaquePointer?, _ z: UnsafePointer<Float>?, _ count: Int64,
                              _ cond: UnsafePointer<Float>?, _ condRows: Int64, _ condIndex: UnsafePointer<Int32>?,
                              _ x: UnsafeMutablePointer<Float>?, _ logdet: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let xp = try require(x, "x"), lp = try require(logdet, "logdet")
        try withBatch(f, z, count, cond, condRows, condIndex, xName: "z") { (b) throws(BGADError) in
            try f.inverse(z: b.x, count: b.count, condTable: b.table, condRows: b.rows, condIndex: b.index, x: xp, logdet: lp)
        }
    }
}

@_cdecl("bgad_flow_train_step")
public func bgad_flow_train_step(_ handle: OpaquePointer?, _ x: UnsafePointer<Float>?, _ count: Int64,
                                 _ cond: UnsafePointer<Float>?, _ condRows: Int64, _ condIndex: UnsafePointer<Int32>?,
                                 _ learningRate: Float, _ objective: Int32, _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let l = try require(loss, "loss")
        let obj = try objectiveFrom(objective)
        try withBatch(f, x, count, cond, condRows, condIndex) { (b) throws(BGADError) in
            l.pointee = try f.trainStep(x: b.x, count: b.count, condTable: b.table, condRows: b.rows, condIndex: b.index,
                                        learningRate: learningRate, objective: obj)
        }
    }
}

@_cdecl("bgad_flow_compute_gradients")
public func bgad_flow_compute_gradients(_ handle: OpaquePointer?, _ x: UnsafePointer<Float>?, _ count: Int64,
                                        _ cond: UnsafePointer<Float>?, _ condRows: Int64, _ condIndex: UnsafePointer<Int32>?,
                                        _ objective: Int32, _ loss: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let l = try require(loss, "loss")
        let obj = try objectiveFrom(objective)
        try withBatch(f, x, count, cond, condRows, condIndex) { (b) throws(BGADError) in
            l.pointee = try f.computeGradients(x: b.x, count: b.count, condTable: b.table, condRows: b.rows,
                                               condIndex: b.index, objective: obj)
        }
    }
}

@_cdecl("bgad_flow_input_gradient")
public func bgad_flow_input_gradient(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let o = try require(out, "out")
        let g = f.inputGradient
        guard !g.isEmpty else { throw .invalid("no gradient computed yet") }
        guard count == Int64(g.count) else { throw .invalid("out holds \(count) floats, the input gradient has \(g.count)") }
        o.update(from: g, count: g.count)
    }
}

@_cdecl("bgad_flow_parameter_count")
public func bgad_flow_parameter_count(_ handle: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        try require(out, "out").pointee = Int64(try flowFrom(handle).parameterNames.count)
    }
}

@_cdecl("bgad_flow_parameter_name")
public func bgad_flow_parameter_name(_ handle: OpaquePointer?, _ i: Int64, _ buffer: UnsafeMutablePointer<CChar>?,
                                     _ capacity: Int64) -> Int32 {
    guarded { () throws(BGADError) in
        let names = try flowFrom(handle).parameterNames
        guard i >= 0, i < Int64(names.count) else { throw .invalid("parameter index \(i) is outside 0..<\(names.count)") }
        let b = try require(buffer, "buffer")
        let bytes = Array(names[Int(i)].utf8CString)
        guard capacity >= Int64(bytes.count) else { throw .invalid("buffer of \(capacity) bytes is too small, need \(bytes.count)") }
        b.update(from: bytes, count: bytes.count)
    }
}

@_cdecl("bgad_flow_parameter_shape")
public func bgad_flow_parameter_shape(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                      _ shape: UnsafeMutablePointer<Int64>?, _ ndim: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded { () throws(BGADError) in
        let s = try flowFrom(handle).parameterShape(try nameFrom(name))
        let sp = try require(shape, "shape"), np = try require(ndim, "ndim")
        sp[0] = Int64(s[0]); sp[1] = s.count > 1 ? Int64(s[1]) : 1
        np.pointee = Int32(s.count)
    }
}

/// Copies the named tensor `read` gives (a parameter or its gradient, `what`) into `out`,
/// which must hold exactly its `count` floats.
private func copyNamedTensor(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                             _ count: Int64, _ what: String,
                             _ read: (ConditionalFlow, String) throws(BGADError) -> [Float]) -> Int32 {
    guarded { () throws(BGADError) in
        let n = try nameFrom(name)
        let v = try read(try flowFrom(handle), n)
        let o = try require(out, "out")
        guard count == Int64(v.count) else { throw .invalid("\(n): out holds \(count) floats, the \(what) has \(v.count)") }
        o.update(from: v, count: v.count)
    }
}

@_cdecl("bgad_flow_get_parameter")
public func bgad_flow_get_parameter(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                    _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> Int32 {
    copyNamedTensor(handle, name, out, count, "parameter") { (f, n) throws(BGADError) in try f.parameter(n) }
}

@_cdecl("bgad_flow_set_parameter")
public func bgad_flow_set_parameter(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                    _ values: UnsafePointer<Float>?, _ count: Int64) -> Int32 {
    guarded { () throws(BGADError) in
        let f = try flowFrom(handle)
        let n = try nameFrom(name)
        let expected = try f.parameterCount(n)
        guard count == Int64(expected) else { throw .invalid("\(n): expected \(expected) values, got \(count)") }
        let v = try require(values, "values")
        try f.setParameter(n, Array(UnsafeBufferPointer(start: v, count: expected)))
    }
}

@_cdecl("bgad_flow_get_gradient")
public func bgad_flow_get_gradient(_ handle: OpaquePointer?, _ name: UnsafePointer<CChar>?,
                                   _ out: UnsafeMutablePointer<Float>?, _ count: Int64) -> Int32 {
    copyNamedTensor(handle, name, out, count, "gradient") { (f, n) throws(BGADError) in try f.parameterGradient(n) }
}

@_cdecl("bgad_positional_encoding")
public func bgad_positional_encoding(_ height: Int64, _ width: Int64, _ dim: Int64, _ out: UnsafeMutablePointer<Float>?) -> Int32 {
    guarded { () throws(BGADError) in
        let h = try requireSize(height, "height"), w = try requireSize(width, "width"), d = try requireSize(dim, "dim")
        guard d >= 4, d % 4 == 0 else { throw .invalid("dim must be a positive multiple of 4, got \(d)") }
        let total = try checkedProduct([h, w, d], "positional encoding")
        let o = try require(out, "out")
        o.update(from: positionalEncoding(height: h, width: w, dim: d), count: total)
    }
}
