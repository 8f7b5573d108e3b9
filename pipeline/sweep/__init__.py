"""Scaling-law sweeps: plan a grid of (model size N, data budget D), launch it, collect results, fit L(N, D)."""
