"""sciops.eval: evaluation of runs, rollouts (autoregressive, teacher-forced), plots.
Imports everything below it (data, pde, nn, models, train).

The rollout drivers belong to the simulator families' layer (`sciops.models.grid_rollout`,
`sciops.models.meshformer.mesh_rollout` and its metrics), so that a family's `rollout` hook
needs nothing above it; they are re-exported here with the rest of evaluation."""

from ..models import GRID_BASELINES as GRID_BASELINES
from ..models import GridBaseline as GridBaseline
from ..models import grid_rollout as grid_rollout
from ..models import simulate_frames as simulate_frames
from ..models.meshformer import BASELINES as BASELINES
from ..models.meshformer import baseline_one_step as baseline_one_step
from ..models.meshformer import baseline_rollout as baseline_rollout
from ..models.meshformer import format_rollout_table as format_rollout_table
from ..models.meshformer import inflow_speed as inflow_speed
from ..models.meshformer import mesh_rollout as mesh_rollout
from ..models.meshformer import relative_scale as relative_scale
from ..models.meshformer import rmse_table as rmse_table
from ..models.meshformer import step_mse as step_mse
from ..train import plot_loss_curve as plot_loss_curve
from ._evaluate import evaluate_run as evaluate_run
