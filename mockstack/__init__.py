"""The mock trading stack: the system under drill.

Services (each its own process): ``broker``, ``marketdata``, ``traderunner``, ``dashboard``.
This package must never import ``harness``: drills reach the stack only over the network,
the files it writes, its CLI and its processes (enforced by an import-linter contract).
"""
