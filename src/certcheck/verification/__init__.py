"""Pure decision logic: number normalisation, the CCC catalogue and decide(). No I/O lives here."""
