"""TFLite's int8 integer arithmetic, reimplemented exactly: the requantization rules (quant), the rule each
engine forms its multipliers by (arithmetic), a parsed graph lowered to integer stages (lower) and those
stages executed in NumPy (network). The compiled engine's generator emits the same stages as C; the host
reference runs them to compute what a device computes."""
