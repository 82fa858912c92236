"""sciops.train: the multi-device training driver (device mesh, sharded batches, jit'd step,
optax, checkpoints, resume, NaN guard) and run configs. Imports data, pde, nn, models."""

from ._callbacks import Callback as Callback
from ._checkpoint import latest_checkpoint as latest_checkpoint
from ._checkpoint import list_checkpoints as list_checkpoints
from ._checkpoint import load_checkpoint as load_checkpoint
from ._checkpoint import save_checkpoint as save_checkpoint
from ._checkpoint import verify_checkpoint as verify_checkpoint
from ._config import Config as Config
from ._config import DataConfig as DataConfig
from ._config import OptimizerConfig as OptimizerConfig
from ._config import TrainConfig as TrainConfig
from ._config import TransferConfig as TransferConfig
from ._config import config_from_dict as config_from_dict
from ._config import config_to_dict as config_to_dict
from ._config import load_config as load_config
from ._data import DataBundle as DataBundle
from ._data import check_finite as check_finite
from ._data import prepare_data as prepare_data
from ._data import read_data as read_data
from ._distributed import initialize as initialize
from ._distributed import is_primary as is_primary
from ._evaluation import evaluate_dataset as evaluate_dataset
from ._fit import fit as fit
from ._mesh import make_mesh as make_mesh
from ._optimizer import make_optimizer as make_optimizer
from ._partition import trainable_filter as trainable_filter
from ._plots import plot_loss_curve as plot_loss_curve
from ._run import Run as Run
from ._run import RunResult as RunResult
from ._run import load_run as load_run
from ._run_folder import RunLock as RunLock
from ._run_folder import check_run_name as check_run_name
from ._run_folder import run_info as run_info
from ._state import StepOutput as StepOutput
from ._state import TrainState as TrainState
from ._state import make_step as make_step
