"""sciops.models: the five model families. Imports from sciops.data, sciops.pde, sciops.nn."""

from ._family import Family as Family
from ._family import family as family
from ._family import family_names as family_names
