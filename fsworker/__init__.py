"""fsworker: one OS process per function replica (wasm host, Pulsar I/O, processing loop)."""
