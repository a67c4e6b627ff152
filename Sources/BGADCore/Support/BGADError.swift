/// The one error type of the engine.
///
/// Every failure that can be caused by the caller (a wrong shape, a NaN, a missing or
/// corrupt file) is reported as a `BGADError` carrying a `Kind` (mapped to a C status
/// code by the ABI layer) and a human-readable message that names the problem.
public struct BGADError: Error, CustomStringConvertible, Equatable {
    /// Broad class of failure; the C ABI maps each kind to one status code.
    public enum Kind: Int32, Sendable {
        /// An argument is invalid: wrong shape, null pointer, NaN/Inf, out of range.
        case invalidArgument = 1
        /// A file could not be opened, read or written.
        case io = 2
        /// A file or buffer has the wrong format: corrupt, truncated, foreign, newer version.
        case format = 3
        /// Work was cancelled by the caller (cooperative cancellation).
        case cancelled = 4
        /// An internal invariant failed; please report it.
        case `internal` = 5
        /// Memory could not be allocated.
        case outOfMemory = 6
    }

    /// Class of the failure.
    public var kind: Kind
    /// Message naming the problem, e.g. "scores: element 3 is NaN".
    public var message: String

    /// Creates an error of the given kind.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Shorthand for an `invalidArgument` error.
    public static func invalid(_ message: String) -> BGADError {
        BGADError(.invalidArgument, message)
    }

    public var description: String { message }
}
