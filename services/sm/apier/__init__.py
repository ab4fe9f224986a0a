"""CGRateS v0.10-compatible JSON-RPC API (TCP :2012, HTTP POST :2080/jsonrpc), translated to the
gRPC services. It holds no business logic: argument shapes in, gRPC calls, CGRateS reply shapes out."""
