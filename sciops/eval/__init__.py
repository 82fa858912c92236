"""sciops.eval: evaluation of runs, rollouts (autoregressive, teacher-forced), plots.
Imports everything below it (data, pde, nn, models, train)."""

from ..train._plots import plot_loss_curve as plot_loss_curve
from ._evaluate import evaluate_run as evaluate_run
from ._grid_rollout import grid_rollout as grid_rollout
from ._grid_rollout import simulate_frames as simulate_frames
from ._mesh_metrics import BASELINES as BASELINES
from ._mesh_metrics import baseline_one_step as baseline_one_step
from ._mesh_metrics import baseline_rollout as baseline_rollout
from ._mesh_metrics import inflow_speed as inflow_speed
from ._mesh_metrics import relative_scale as relative_scale
from ._mesh_metrics import rmse_table as rmse_table
from ._mesh_metrics import step_mse as step_mse
from ._mesh_rollout import format_rollout_table as format_rollout_table
from ._mesh_rollout import mesh_rollout as mesh_rollout
