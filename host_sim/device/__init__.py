"""Programs host_sim runs inside MicroPython: benches, provisioning, the journal power-cut trials.

Device code under the MicroPython rules (DESIGN.md): host_sim launches these files by path
(host_sim/micropython.py, or mpremote for a board) and never imports them."""
