/// Version of the engine (semantic versioning), the same string as the Python package's.
public let bgadVersionString = "0.1.0"

/// Version of the C ABI. Incremented whenever a function's signature or meaning changes
/// incompatibly; the Python loader refuses a library whose ABI version differs from its own.
public let bgadABIVersion: Int32 = 1
