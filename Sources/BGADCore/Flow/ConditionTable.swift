/// Turns per-vector condition rows into a table of distinct rows plus an index, so that the
/// flow computes each distinct condition's share of the first layer once.
///
/// Rows are compared bit for bit (hash, then exact comparison), so the result is exact:
/// `table[index[i]] == rows[i]` for every i.
public func deduplicateConditions(rows: UnsafePointer<Float>, count: Int, dim: Int) -> (table: [Float], index: [Int32]) {
    guard count > 0, dim > 0 else { return ([], [Int32](repeating: 0, count: max(count, 0))) }
    var capacity = 16
    while capacity < 2 * count { capacity <<= 1 }
    let mask = capacity - 1
    var slots = [Int32](repeating: -1, count: capacity)   // slot → table row
    var firstVector: [Int] = []                           // table row → a vector holding it
    var index = [Int32](repeating: 0, count: count)
    rows.withMemoryRebound(to: UInt32.self, capacity: count * dim) { bits in
        for i in 0..<count {
            let r = bits + i * dim
            var h: UInt64 = 0xCBF2_9CE4_8422_2325
            for j in 0..<dim { h = (h ^ UInt64(r[j])) &* 0x100_0000_01B3 }
            var s = Int(truncatingIfNeeded: h ^ (h >> 29)) & mask
            while true {
                let t = slots[s]
                if t < 0 {
                    slots[s] = Int32(firstVector.count)
                    index[i] = Int32(firstVector.count)
                    firstVector.append(i)
                    break
                }
                let o = bits + firstVector[Int(t)] * dim
                var same = true
                for j in 0..<dim where o[j] != r[j] { same = false; break }
                if same { index[i] = t; break }
                s = (s + 1) & mask
            }
        }
    }
    var table = [Float](repeating: 0, count: firstVector.count * dim)
    for (t, i) in firstVector.enumerated() {
        for j in 0..<dim { table[t * dim + j] = rows[i * dim + j] }
    }
    return (table, index)
}
