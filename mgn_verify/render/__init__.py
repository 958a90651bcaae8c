"""Pictures of the dependency graph and the offline HTML pages they appear in (no dependencies:
pure text, imported lazily by the ``html`` reporter and ``mgn verify graph --format svg|html``)."""
