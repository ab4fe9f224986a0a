"""Generated from protos/cgrates/v1 by scripts/gen_protos.py; do not edit."""
