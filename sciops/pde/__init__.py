"""sciops.pde: reference solvers that make training data. Imports from sciops.data only."""

from ._convergence import SelfConvergence as SelfConvergence
from ._convergence import relative_l2 as relative_l2
from ._geometry import SHAPES as SHAPES
from ._geometry import Cross as Cross
from ._geometry import Disk as Disk
from ._geometry import LShape as LShape
from ._geometry import PlateWithHoles as PlateWithHoles
from ._geometry import Square as Square
from ._geometry import Triangle as Triangle
from ._geometry import as_mask as as_mask
from ._geometry import grid_mask as grid_mask
from ._problem import Problem as Problem
from ._problem import problem as problem
from ._problem import problem_names as problem_names
from ._problem import register_problem as register_problem
