"""(being written) the self-contained HTML report."""
