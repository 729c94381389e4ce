"""Benchmarks: each module is runnable as ``python -m bench.<name>`` and takes ``--quick``;
``python -m bench.run`` (``make bench``) runs them all in quick mode."""
