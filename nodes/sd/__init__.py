"""Stable Diffusion building blocks used by the nodes (no node classes here)."""
