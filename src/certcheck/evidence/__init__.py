"""Evidence: every check recorded (records, buffer, partitions) and readable later as signed
receipts (signing, receipts); statistics and misuse signals folded in as records are written
(staged, tally) and read without the records (stats, signals). Below the HTTP layer and the
job workers, which both record."""
