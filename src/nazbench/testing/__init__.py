"""Helpers for nazbench's tests and benchmarks (throwaway servers); not used on the hosts."""
