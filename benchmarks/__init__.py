"""The project's benchmarks: each a module, run from the repository's root as
``python -m benchmarks.<name> ... --out benchmarks/results/<name>_<what>_<device>.json``; each writes its
result with :mod:`benchmarks.record`."""
