"""The component ids that more than one section of the run page reads or writes.

An id used by one section only stays a string beside its layout; these are the
contract between sections (the replay slider drives the curves, the histograms,
the graph and the node table; the summary's story button moves the slider and
the graph).
"""

RUN_ID = "run-id"  # dcc.Store: the run's id (hex)
META = "run-meta"  # dcc.Store: what sections need to know about the run (overview.meta_for)
LIVE = "run-live"  # dcc.Store: the newest step seen by the live poll
SLIDER = "run-slider"  # dcc.Slider: the replayed step
LOSS = "run-loss"  # dcc.Graph: the loss curve (a click on it moves the slider)
GRAPH_MODE = "run-g-mode"  # RadioItems: a neuron for one example, or around a node
GRAPH_NODE = "run-g-node"  # Input: the node the graph centres on
WEIGHTS = "run-w-param"  # Dropdown: the weights plotted in the weights section
PAINTED = "run-below-go"  # dcc.Store: set by the browser once the loss curve is drawn
FOCUS = "run-w-focus"  # dcc.Store: {"layer", "neuron"} whose weights the weights section shows
STORY_GO = "run-story-go"  # Button: replay the divergence's step, the graph on its node
