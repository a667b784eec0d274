"""The Freqtrade drill project's own steps and faults (drill.toml names them)."""
