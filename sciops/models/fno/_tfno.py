"""The MG-TFNO options of the `fno` family: config checks and the injected objects they build.

`FNOConfig` carries the keys (`factorization`, `rank`, `joint`, `implementation`, `skip`,
`channel_mlp_expansion`, `channel_mlp_skip`, `norm`, `mg_*`); this module turns them into the
objects the network takes (a `FactorizedSpectralWeight`, `FNOBlocks`, an `MGPatching`), checks
them before anything is compiled, and forms the patch-wise training pairs of multi-grid
training (Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution
PDEs", TMLR 2024).
"""

from __future__ import annotations

import jax
from jaxtyping import Array, Float, PRNGKeyArray

from ..._errors import ConfigError
from ...nn._factorized import (
    CP,
    TT,
    FactorizedSpectralWeight,
    Tucker,
    cp_rank,
    tt_ranks,
    tucker_ranks,
)
from ...nn._fno_blocks import (
    FNOBlocks,
    GroupNorm,
    IdentitySkip,
    InstanceNorm,
    LinearSkip,
    SoftGating,
)
from ...nn._spectral import check_modes, weight_mode_shape
from ._mg import MGOperator, MGPatching, apply_batch

__all__ = ["check_config", "spectral_weight", "blocks", "patching", "check_grid",
           "patch_pairs", "uses_patches"]

_FACTORIZATIONS = {"cp": (CP, cp_rank), "tucker": (Tucker, tucker_ranks), "tt": (TT, tt_ranks)}
_SKIPS = {"linear": LinearSkip, "soft-gating": SoftGating, "identity": IdentitySkip}
# group norm with 4 channels per group would be a further choice; one group count keeps the
# config to one key (GroupNorm's groups must divide hidden_channels, checked below)
_GROUPS = 4


def check_config(config) -> None:
    """Raise `ConfigError` naming the key for MG-TFNO settings that cannot work.

    Runs in `FNOConfig.__post_init__`, i.e. when the YAML is read, before any compilation.
    """
    if config.factorization != "dense":
        shape = (config.hidden_channels, config.hidden_channels,
                 *weight_mode_shape(config.n_modes))
        if config.joint:
            shape = (config.n_layers, *shape)
        _FACTORIZATIONS[config.factorization][1](shape, config.rank, "model.rank")
    if config.channel_mlp_expansion < 0:
        raise ConfigError(f"model.channel_mlp_expansion: expected a value >= 0, got "
                          f"{config.channel_mlp_expansion}")
    if config.norm == "group" and config.hidden_channels % _GROUPS:
        raise ConfigError(f"model.norm: 'group' uses {_GROUPS} groups, which must divide "
                          f"model.hidden_channels={config.hidden_channels}")
    patching(config)  # its constructor checks mg_patches, mg_levels, mg_padding, mg_boundary


def spectral_weight(config, *, key: PRNGKeyArray) -> FactorizedSpectralWeight | None:
    """The factorized spectral weights, or None for the dense default."""
    if config.factorization == "dense":
        return None
    fmt = _FACTORIZATIONS[config.factorization][0](config.rank)
    return FactorizedSpectralWeight(fmt, config.n_layers, config.hidden_channels,
                                    config.hidden_channels, config.n_modes, joint=config.joint,
                                    reconstruct=config.implementation == "reconstructed",
                                    key=key, rank_name="model.rank")


def blocks(config, *, key: PRNGKeyArray) -> FNOBlocks | None:
    """The layer pieces, or None when the config asks for the plain FNO layer."""
    if (config.skip, config.channel_mlp_expansion, config.norm) == ("linear", 0.0, "none"):
        return None
    norm = {"none": None, "instance": InstanceNorm,
            "group": lambda c: GroupNorm(_GROUPS, c)}[config.norm]
    return FNOBlocks(config.n_layers, config.hidden_channels, _SKIPS[config.skip],
                     config.channel_mlp_expansion, _SKIPS[config.channel_mlp_skip], norm,
                     key=key)


def patching(config) -> MGPatching | None:
    """The multi-grid geometry, or None without patching or context levels."""
    if config.mg_patches == 1 and config.mg_levels == 0:
        if config.mg_padding:
            raise ConfigError(f"model.mg_padding: only used with model.mg_patches > 1 or "
                              f"model.mg_levels > 0, got {config.mg_padding}")
        return None
    return MGPatching(config.mg_patches, config.mg_levels, config.mg_padding,
                      config.mg_boundary, coordinates=config.positional_embedding,
                      name="model.mg_patches")


def check_grid(config, spatial: tuple[int, ...]) -> None:
    """Check that `n_modes` and the patches fit a grid (a training or a test resolution)."""
    mg = patching(config)
    if mg is None:
        check_modes(config.n_modes, spatial)
        return
    h, w, delta = mg.geometry(tuple(spatial))
    check_modes(config.n_modes, (h + 2 * delta, w + 2 * delta),
                what="model.n_modes (on the padded multi-grid patches)")


def patch_pairs(config, model, x: Float[Array, "batch channels y x"],
                y: Float[Array, "batch channels y x"], key: PRNGKeyArray
                ) -> tuple[Float[Array, "samples channels h w"], Float[Array, "samples channels h w"]]:
    """Predicted and true padded patches for multi-grid training, in physical units.

    With `mg_train: one` every field contributes one random patch (the memory of the step is
    that of `batch` patches); with `all` every patch of every field is a sample.
    """
    net: MGOperator = model.net
    mg = net.patching
    n = mg.n_patches**2
    c_out = y.shape[1]

    # Targets are the padded output patches (level 0, filled like the input: exact on a torus,
    # reflected/repeated outside a non-periodic domain): stitching blends the padded margins
    # of neighbouring predictions into the overlaps, so training supervises them too.
    def target(yi):
        return mg.patchify(yi)[:, :c_out]

    if config.mg_train == "one":
        index = jax.random.randint(key, (x.shape[0],), 0, n)
        # the drawn patch of every field (what `MGOperator.patch_forward(crop=False)` predicts),
        # all through the patch network as one batch
        inputs = jax.vmap(lambda xi, k: mg.patchify(model.in_norm.encode(xi), k))(x, index)
        pred = jax.vmap(model.out_norm.decode)(apply_batch(net.net, inputs))
        true = jax.vmap(lambda yi, k: mg.patchify(yi, k)[:c_out])(y, index)
        return pred, true

    inputs = jax.vmap(lambda xi: net.patches(model.in_norm.encode(xi)))(x)
    pred = apply_batch(net.net, inputs.reshape(-1, *inputs.shape[2:]))
    pred = jax.vmap(model.out_norm.decode)(pred)
    true = jax.vmap(target)(y)
    return pred, true.reshape(-1, *true.shape[2:])


def uses_patches(model) -> bool:
    return isinstance(getattr(model, "net", None), MGOperator)

