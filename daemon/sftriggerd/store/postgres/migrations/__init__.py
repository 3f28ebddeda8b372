"""The PostgreSQL schema versions: `NNNN_name.sql`, applied in order, one transaction each
(`schema.migrate`). A file is never edited once released; a change is a new file."""
