"""Recording a run: the recorder, its writer, the capture of a step's graph, how runs end.

The public API is :mod:`gradtrace.tracer`; these modules are its parts."""
