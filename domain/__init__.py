"""Pure business decisions: no I/O, no clock, no environment, no Temporal, no SQL."""
