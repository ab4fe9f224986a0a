"""`cgr`, the operator's command line (CGRateS users know it as cgr-loader / cgr-console)."""
