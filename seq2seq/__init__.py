"""seq2seq: GRU encoder + attention decoder neural machine translation."""

__version__ = "0.1.0"
