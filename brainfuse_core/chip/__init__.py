"""Chip pipeline: fixed-point quantization, Lava deployment, core mapping and power (see the chip issue)."""
