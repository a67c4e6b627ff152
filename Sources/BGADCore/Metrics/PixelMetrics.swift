/// Pixel-level metrics over a stack of anomaly maps: pixel ROC AUC and AU-PRO.
///
/// Both are exact (no threshold grid): scores are mapped to order-preserving integer
/// keys (`orderedKey`) and radix-sorted, then the curve is walked one distinct score
/// value at a time.

extension Metrics {
    /// Validates a stack of `count` binary masks and anomaly maps of `height × width`.
    static func validatePixelInput(
        masks: UnsafeBufferPointer<UInt8>, maps: UnsafeBufferPointer<Float>,
        count: Int, height: Int, width: Int
    ) throws(BGADError) {
        guard count > 0, height > 0, width > 0 else {
            throw .invalid("empty input: \(count) maps of \(height)×\(width)")
        }
        let total = count * height * width
        guard masks.count == total, maps.count == total else {
            throw .invalid("masks and maps must both hold \(count)×\(height)×\(width) = \(total) values (got \(masks.count) and \(maps.count))")
        }
        var maxMask: UInt8 = 0
        for v in masks { maxMask = max(maxMask, v) }  // branch-free scan, vectorised
        if maxMask > 1 {
            for i in 0..<total where masks[i] > 1 {
                throw .invalid("masks: element \(i) is \(masks[i]); mask values must be 0 (normal) or 1 (anomalous)")
            }
        }
        try requireFinite(maps, "maps")
    }

    /// ROC AUC over every pixel of a stack of maps (`masks[i] = 1` marks an anomalous
    /// pixel). Equal to scikit-learn's `roc_auc_score(masks.ravel(), maps.ravel())`.
    ///
    /// Computed as the Mann–Whitney statistic on radix-sorted keys: for each anomalous
    /// pixel, the normal pixels scoring below it count 1 and those tied with it ½.
    public static func pixelROCAUC(
        masks: UnsafeBufferPointer<UInt8>, maps: UnsafeBufferPointer<Float>,
        count: Int, height: Int, width: Int
    ) throws(BGADError) -> Double {
        try validatePixelInput(masks: masks, maps: maps, count: count, height: height, width: width)
        let total = maps.count
        var positives = 0
        for i in 0..<total { positives &+= Int(masks[i]) }
        let negatives = total - positives
        try requireBothClasses(positives: positives, negatives: negatives)

        let pos = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: positives)
        let neg = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: negatives)
        let scratch = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(positives, negatives))
        defer { pos.deallocate(); neg.deallocate(); scratch.deallocate() }
        var ip = 0, ineg = 0
        for i in 0..<total {
            let k = orderedKey(maps[i])
            if masks[i] != 0 { pos[ip] = k; ip += 1 } else { neg[ineg] = k; ineg += 1 }
        }
        radixSort(pos, scratch: scratch)
        radixSort(neg, scratch: scratch)
        // Σ over positives of (2·#neg below + #neg tied), an exact integer.
        var twiceU: UInt64 = 0
        var below = 0
        var j = 0
        while j < positives {
            let key = pos[j]
            var run = 0
            while j < positives && pos[j] == key { run += 1; j += 1 }
            while below < negatives && neg[below] < key { below += 1 }
            var tied = 0
            while below + tied < negatives && neg[below + tied] == key { tied += 1 }
            twiceU &+= UInt64(run) &* UInt64(2 * below + tied)
        }
        return Double(twiceU) / (2.0 * Double(positives) * Double(negatives))
    }

    /// Area under the per-region-overlap (PRO) curve up to `fprLimit`, divided by it.
    ///
    /// Regions are the 8-connected components of each mask. For a threshold `t`
    /// (pixels with `score ≥ t` are called anomalous), PRO(t) is the mean over all
    /// regions of the stack of (region pixels called anomalous / region area), and
    /// FPR(t) the fraction of all normal pixels called anomalous. The curve through
    /// `(0, 0)` and the point of every distinct score value is integrated with the
    /// trapezoid rule up to `FPR = fprLimit`, interpolating linearly at the limit.
    ///
    /// - Throws: `BGADError` for bad shapes, values, `fprLimit` outside (0, 1], masks
    ///   without any anomalous or without any normal pixel.
    public static func auPRO(
        masks: UnsafeBufferPointer<UInt8>, maps: UnsafeBufferPointer<Float>,
        count: Int, height: Int, width: Int, fprLimit: Double = 0.3
    ) throws(BGADError) -> Double {
        try validatePixelInput(masks: masks, maps: maps, count: count, height: height, width: width)
        guard fprLimit > 0, fprLimit <= 1 else {
            throw .invalid("fpr_limit must lie in (0, 1], got \(fprLimit)")
        }
        let plane = height * width
        // Label regions image by image; regionArea[r] = area of global region r.
        var regionArea: [Int] = []
        var positives = 0
        var componentsOfImage: [ConnectedComponents?] = []
        componentsOfImage.reserveCapacity(count)
        for img in 0..<count {
            let m = UnsafeBufferPointer(rebasing: masks[img * plane ..< (img + 1) * plane])
            var any = false
            for v in m where v != 0 { any = true; break }
            if !any { componentsOfImage.append(nil); continue }
            let cc = ConnectedComponents(mask: m, height: height, width: width)
            componentsOfImage.append(cc)
            regionArea.append(contentsOf: cc.sizes)
            positives += cc.sizes.reduce(0, +)
        }
        let negatives = count * plane - positives
        try requireBothClasses(positives: positives, negatives: negatives)

        // Anomalous pixels: key in the high word, global region index in the low word.
        let anomalous = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: positives)
        let anomalousScratch = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: positives)
        let normal = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: negatives)
        let normalScratch = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: negatives)
        defer { anomalous.deallocate(); anomalousScratch.deallocate(); normal.deallocate(); normalScratch.deallocate() }
        var ia = 0, inorm = 0
        var regionOffset = 0
        // Histogram of the normal keys' top 11 bits (used below to skip pixels past the limit).
        var histogram = [Int](repeating: 0, count: 2048)
        for img in 0..<count {
            let base = img * plane
            if let cc = componentsOfImage[img] {
                cc.labels.withUnsafeBufferPointer { labels in
                    for p in 0..<plane {
                        let k = orderedKey(maps[base + p])
                        let l = labels[p]
                        if l != 0 {
                            anomalous[ia] = UInt64(k) << 32 | UInt64(regionOffset + Int(l) - 1)
                            ia += 1
                        } else {
                            normal[inorm] = k
                            histogram[Int(k >> 21)] += 1
                            inorm += 1
                        }
                    }
                }
                regionOffset += cc.count
            } else {
                for p in 0..<plane {
                    let k = orderedKey(maps[base + p])
                    normal[inorm] = k
                    histogram[Int(k >> 21)] += 1
                    inorm += 1
                }
            }
        }
        // Only thresholds down to FPR = fprLimit matter. A histogram of the keys' top
        // 11 bits finds the bucket where the normal count from the top reaches the limit;
        // pixels in lower buckets are never reached by the walk below, so they are
        // dropped before sorting (a 1/limit saving of the sort's work).
        let needed = Int((fprLimit * Double(negatives)).rounded(.up))
        var cut = 2047
        var above = 0
        while cut > 0 {
            above += histogram[cut]
            if above >= needed { break }
            cut -= 1
        }
        let cutKey = UInt32(cut) << 21
        var keptNormal = 0
        for i in 0..<negatives {  // branch-free compaction
            let k = normal[i]
            normal[keptNormal] = k
            keptNormal += k >= cutKey ? 1 : 0
        }
        var keptAnomalous = 0
        for i in 0..<positives where UInt32(truncatingIfNeeded: anomalous[i] >> 32) >= cutKey {
            anomalous[keptAnomalous] = anomalous[i]
            keptAnomalous += 1
        }
        radixSortByHighWord(UnsafeMutableBufferPointer(rebasing: anomalous[0..<keptAnomalous]), scratch: anomalousScratch)
        radixSort(UnsafeMutableBufferPointer(rebasing: normal[0..<keptNormal]), scratch: normalScratch)

        // Weight of one anomalous pixel of region r in the mean over regions.
        let regions = Double(regionArea.count)
        let weight = regionArea.map { 1.0 / (Double($0) * regions) }

        // Walk thresholds from the highest score down.
        var a = keptAnomalous - 1, b = keptNormal - 1
        var fp = 0
        var pro = 0.0
        var prevF = 0.0, prevP = 0.0
        var area = 0.0
        let n = Double(negatives)
        while a >= 0 || b >= 0 {
            let ka: UInt32 = a >= 0 ? UInt32(truncatingIfNeeded: anomalous[a] >> 32) : 0
            let kb: UInt32 = b >= 0 ? normal[b] : 0
            let key: UInt32
            if a < 0 { key = kb } else if b < 0 { key = ka } else { key = max(ka, kb) }
            while a >= 0 && UInt32(truncatingIfNeeded: anomalous[a] >> 32) == key {
                pro += weight[Int(UInt32(truncatingIfNeeded: anomalous[a]))]
                a -= 1
            }
            while b >= 0 && normal[b] == key { fp += 1; b -= 1 }
            let f = Double(fp) / n
            if f >= fprLimit {
                // Last segment: interpolate PRO linearly at the limit.
                let pAtLimit = f > prevF ? prevP + (pro - prevP) * (fprLimit - prevF) / (f - prevF) : pro
                area += (fprLimit - prevF) * (prevP + pAtLimit) / 2
                return area / fprLimit
            }
            area += (f - prevF) * (prevP + pro) / 2
            prevF = f
            prevP = pro
        }
        // Unreachable: the kept normal pixels number at least ⌈limit · negatives⌉, so f reaches the limit.
        throw BGADError(.internal, "au_pro: the FPR never reached the limit")
    }
}
