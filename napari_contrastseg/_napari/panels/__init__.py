"""The dock's panels: each reads and writes the dock state (and starts jobs), none imports another."""
