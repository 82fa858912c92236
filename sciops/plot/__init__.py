"""sciops.plot: every figure sciops writes goes through here (imports numpy and, lazily,
matplotlib; nothing from the rest of sciops), so every layer may use it.

Each function returns the matplotlib `Figure` and writes a PNG when given `path`. Fields get
titles, axis labels with units, a colorbar with the field's name and unit, one colour scale
shared by truth and prediction and a diverging one for errors; curves get labelled axes and a
legend.
"""

from ._figures import Column as Column
from ._figures import animate_fields as animate_fields
from ._figures import animate_mesh_fields as animate_mesh_fields
from ._figures import describe_field as describe_field
from ._figures import field_label as field_label
from ._figures import grid_extent as grid_extent
from ._figures import metric_label as metric_label
from ._figures import plot_curve_panels as plot_curve_panels
from ._figures import plot_curves as plot_curves
from ._figures import plot_fields as plot_fields
from ._figures import plot_loss_curve as plot_loss_curve
from ._figures import plot_mesh_fields as plot_mesh_fields
from ._figures import plot_parity as plot_parity
from ._figures import pyplot as pyplot
from ._figures import read_png as read_png
from ._figures import save as save
