"""The component ids that more than one file of the run page reads or writes.

An id used by one section only stays a string beside its layout; these are the
contract between sections (the replay slider drives the curves, the histograms,
the graph and the node table; the summary's story button moves the slider and
the graph; the live poll writes the header and the curves read it). Clientside
functions in ``assets/run.js`` get the ids they touch passed in, never spelled.

Page-level stores (``RUN_ID``, ``STEP``, ``LIVE``) are in the page's first
response, so a callback of the curves (a control visible from the first paint)
never waits on a section mounted later.
"""

# page level: in the first response
RUN_ID = "run-id"  # dcc.Store: the run's id (hex); the one place callbacks read it from
STEP = "run-step"  # dcc.Store: the replayed step (the slider writes it; the curves read it)
LIVE = "run-live"  # dcc.Store: the newest step seen by the live poll
LIVE_TIMER = "run-live-timer"  # dcc.Interval: the live poll (enabled once the page is whole)
MARKED = "run-marked"  # dcc.Store: the ids of the charts that draw the replay step
URL = "run-url"  # dcc.Store: written by the browser, the view's URL
PAINTED = "run-below-go"  # dcc.Store: set by the browser once the loss curve is drawn
BELOW = "run-below"  # html.Div: the sections under the curves, mounted after the first paint
BELOW_ARGS = "run-below-args"  # dcc.Store: what the URL asked of the sections below

# header (summary.py) and the live poll (overview.py)
HEADER = "run-header"
STATUS = "run-status"
STEPS = "run-steps"
DURATION = "run-duration"
BEST = "run-sum-best"
LOSS_TEXT = "run-sum-loss"
ACC = "run-sum-acc"
SUM_HEALTH = "run-sum-health"  # the health section's links in the header strip
STORY_GO = "run-story-go"  # the divergence story's button

# curves (overview.py)
LOSS = "run-loss"  # dcc.Graph: the loss curve (a click on it moves the slider)
METRICS = "run-metrics"  # dcc.Graph: the other metrics, one panel each
LOGY = "run-logy"

# below the fold
H_UNITS = "run-h-units"  # health: dead/saturated fraction per layer
H_RATIO = "run-h-ratio"  # health: update / data ratio per layer
H_GRADNORM = "run-h-gradnorm"  # health: gradient norm per layer
LIVE_BELOW = "run-live-below"  # dcc.Store: LIVE, for the sections below (mounted with them)
META = "run-meta"  # dcc.Store: what sections need to know about the run (overview.meta_for)
SLIDER = "run-slider"  # dcc.Slider: the replayed step
WEIGHT_HIST = "run-weight-hist"
GRAD_HIST = "run-grad-hist"
HIST_LAYER = "run-hist-layer"  # RadioItems: the layer the histograms show
GRAPH_MODE = "run-g-mode"  # RadioItems: a neuron for one example, or around a node
GRAPH_NODE = "run-g-node"  # Input: the node the graph centres on
WEIGHTS = "run-w-param"  # Dropdown: the weights plotted in the weights section
W_HISTORY = "run-w-history"
W_HEATMAP = "run-w-heatmap"
WEIGHTS_SECTION = "run-weights"  # the weights card (a stalled row scrolls to it)
STALLED = "run-h-stalled"  # AgGrid: the stalled weights (a click plots that weight)
