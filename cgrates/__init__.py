"""Generated from protos/ (cgrates.v1)."""
