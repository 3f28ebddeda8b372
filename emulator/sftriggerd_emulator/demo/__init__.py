"""`sftriggerd demo`: emulator, sample receiver and daemon in one process, for a first look."""
