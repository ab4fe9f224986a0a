"""Tariff plans: the CGRateS v0.10 CSV folder format (columns, reading, validation, loading)."""
