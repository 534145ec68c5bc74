"""What we prove about outputs: ELF facts (read defensively) and the gates built on them."""
