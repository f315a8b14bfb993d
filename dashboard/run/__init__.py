"""The sections of the run page (``/run/<id>``), each a layout plus its callbacks:
overview (header, curves, live growth), weights, replay, nodes (graph and table)."""
