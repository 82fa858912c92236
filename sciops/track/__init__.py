"""sciops.track: experiment tracking, the callbacks `fit` sends every metric record to.

`train.trackers` in a run config picks them (default ``[tensorboard, csv]``): TensorBoard event
files in the run folder (`tensorboard --logdir runs`), a tidy `metrics.csv`, and Weights &
Biases (`wandb`, the `track` extra). Each receives the records `fit` writes to
`metrics.jsonl`, the run's figures and, at the end, the config as hyper-parameters with the
final metrics. Imports numpy and, lazily, tensorboardX / wandb; nothing above `sciops.plot`.
"""

from ._csv import CSVTracker as CSVTracker
from ._tensorboard import TensorBoardTracker as TensorBoardTracker
from ._tracker import TRACKERS as TRACKERS
from ._tracker import Tracker as Tracker
from ._tracker import Trackers as Trackers
from ._tracker import flatten_config as flatten_config
from ._tracker import open_trackers as open_trackers
from ._wandb import WandbTracker as WandbTracker
