#if canImport(Glibc)
import Glibc
#endif

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

/// What a cache of a condition table's first-layer shares was built from: a copy of the
/// table, its row count, the flow's parameter version, and, when the table is the flow's own
/// positional condition, its grid size (`ConditionalFlow.logLikelihood(x:gridHeight:…)`).
struct ConditionCacheKey {
    private let table = FloatBuffer()
    private var rows = -1, version = -1
    private var grid: (height: Int, width: Int)?

    /// Whether the cache holds `condTable` (`rows × dim`) at `version`: known without
    /// comparing tables when both are the positional condition of the same `grid`, else by
    /// content (a hit then remembers `grid`).
    mutating func holds(_ condTable: UnsafePointer<Float>, rows: Int, dim: Int, version: Int,
                        grid: (height: Int, width: Int)?) -> Bool {
        guard self.version == version, self.rows == rows else { return false }
        if let grid, let built = self.grid, built == grid { return true }
        guard memcmp(table.pointer, condTable, rows * dim * MemoryLayout<Float>.stride) == 0 else { return false }
        self.grid = grid
        return true
    }

    /// Forgets the table, before the cache is overwritten (so that a failure part way leaves no stale hit).
    mutating func invalidate() {
        version = -1
        grid = nil
    }

    /// Records that the cache now holds `condTable` at `version`.
    mutating func record(_ condTable: UnsafePointer<Float>, rows: Int, dim: Int, version: Int,
                         grid: (height: Int, width: Int)?) throws(BGADError) {
        try table.reserve(rows * dim).update(from: condTable, count: rows * dim)
        self.rows = rows
        self.version = version
        self.grid = grid
    }
}
