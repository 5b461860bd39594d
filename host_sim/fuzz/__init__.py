"""The scale fuzzer: targets (the oracle, also run inside MicroPython), seeds, mutations, the command."""
