"""The terminal app (Textual). Start it with `edgetutor.tui.app.make_app().run()`.

This package is the only place that imports Textual: the core (`cases`, `packs`, `patient`,
`scoring`, `store`) never imports it, and `tests/tui/test_core_isolation.py` checks that.
"""
