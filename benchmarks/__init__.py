"""Speed and memory figures, measured here and never in timed tests. `make bench` runs them all."""
