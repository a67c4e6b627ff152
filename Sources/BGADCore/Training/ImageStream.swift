/// Draws batches of distinct image indices from reshuffled passes over `0..<count`, so a
/// step budget can outlast one pass: a batch that crosses the end of a pass takes the rest of
/// that pass and continues in a freshly shuffled one, skipping the indices it already holds
/// (they stay in the new pass for later batches).
struct ImageStream {
    private var order: [Int]
    private var position: Int

    /// A stream over `count` images; the first pass is shuffled on the first draw.
    init(count: Int) {
        order = Array(0..<count)
        position = count
    }

    /// Replaces `batch` with the next `size` (≤ count) distinct indices.
    mutating func next(_ size: Int, into batch: inout [Int], rng: inout SeededRandom) {
        batch.removeAll(keepingCapacity: true)
        while batch.count < size {
            if position == order.count {
                rng.shuffle(&order)
                position = 0
            }
            var j = position
            while batch.contains(order[j]) { j += 1 }  // only after a new pass began; j < count since size ≤ count
            order.swapAt(position, j)
            batch.append(order[position])
            position += 1
        }
    }
}
