"""What every service process shares: gRPC server bootstrap, health, reflection, metrics,
structured logs, graceful shutdown and the inter-service client."""
