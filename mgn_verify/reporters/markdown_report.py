"""(being written) the Markdown summary report."""
