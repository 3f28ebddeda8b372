"""The emulator's project directory. This file only makes its tests importable as
`emulator.tests` next to the root `tests` package; the installable package is
`sftriggerd_emulator` (see pyproject.toml here)."""
