"""sciops.pde: reference solvers that make training data. Imports from sciops.data only."""

from ._convergence import SelfConvergence as SelfConvergence
from ._convergence import relative_l2 as relative_l2
from ._problem import Problem as Problem
from ._problem import problem as problem
from ._problem import problem_names as problem_names
from ._problem import register_problem as register_problem
