"""Shared helpers for the DCGAN lab."""
