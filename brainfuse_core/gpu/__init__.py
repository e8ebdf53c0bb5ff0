"""Triton engine: fused GPU kernels generated from channel definitions (see the Triton-engine issue)."""
