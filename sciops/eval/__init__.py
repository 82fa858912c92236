"""sciops.eval: evaluation of runs, rollouts (autoregressive, teacher-forced), plots.
Imports everything below it (data, pde, nn, models, train)."""

from ..train._plots import plot_loss_curve as plot_loss_curve
from ._evaluate import evaluate_run as evaluate_run
