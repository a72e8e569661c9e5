"""certcheck: real-time verification of China Compulsory Certification (3C) certificates."""

__version__ = "0.1.0"
