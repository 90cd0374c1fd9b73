"""Daodi Trace ledger: RFC 9162 Merkle log, hash-chained entries, C2SP signed notes, tiles and proofs."""
