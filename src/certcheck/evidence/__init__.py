"""Evidence: every check recorded (records, buffer, partitions) and readable later as signed
receipts (signing, receipts). Below the HTTP layer and the job workers, which both record."""
