"""The normalised event and the pure functions that make and present it."""
