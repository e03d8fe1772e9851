"""``get_sparse_model`` and ``SparseModel``: PST (or MaP, MvP) on any transformers model, peft-style.

``get_sparse_model(model, config)`` changes ``model`` in place (GPT-2's Conv1D projections become
linear layers, every target becomes a sparse layer, ``requires_grad`` is set per method) and returns a
``SparseModel`` around it: a module that forwards to the model and adds the method's controls
(``set_sparsity``, ``schedule``, ``calibrate`` for the methods that prune once, ``penalty``,
``print_trainable_parameters``, ``merge_and_unload``, ``save_pretrained``). The runner
(``pst_bench.models.prepare``) builds its models through here.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ConfigError
from ..files import atomic_folder
from ..methods import get_method
from ..sparsity.activations import install_token_mask
from ..sparsity.conv1d import linearize_conv1d, restore_conv1d
from ..sparsity.inject import (
    configure_trainable,
    merge_sparse_layers,
    method_buffers,
    method_penalty,
    set_sparsity,
    sparsify,
)
from ..sparsity.modules import matching_module_names
from ..sparsity.oneshot import calibrate_sequentially, one_shot_layers
from ..sparsity.schedule import CubicSchedule
from ..sparsity.structure import apply_structure, describe_structure
from .config import SparseConfig
from .presets import PRESETS, Preset, model_type_of, preset_for

CONFIG_NAME = "sparse_config.json"
WEIGHTS_NAME = "sparse_adapter.safetensors"
FORMAT_VERSION = 1


def resolve_targets(model: nn.Module, config: SparseConfig) -> dict:
    """The module patterns ``config`` means for this model: its own where given, else its model type's preset.

    A model type without a preset needs ``target_modules`` (the error lists its linear layers).
    """
    preset = PRESETS.get(model_type_of(model))
    if preset is None and config.target_modules is None and get_method(config.method).sparse:
        preset_for(model)  # raises, naming the model's linear layers
    preset = preset or Preset(target_modules=())

    def own_or_preset(value, default) -> list:
        return list(default) if value is None else list(value)

    # a preset's head names are candidates: the ones this model has (a causal LM has none)
    heads = [name for name in preset.head_modules if matching_module_names(model, [name])]
    return {
        "targets": own_or_preset(config.target_modules, preset.target_modules),
        "heads": own_or_preset(config.modules_to_save, heads),
        "units": preset.units if config.unit_roles is None else dict(config.unit_roles),
        "conv1d": own_or_preset(config.conv1d_modules, preset.conv1d_modules),
        "qkv": own_or_preset(config.qkv_modules, preset.qkv_modules),
    }


def overall_sparsity(layers: dict) -> float:
    """Pruned share of all the weights of these sparse layers under their current masks (0 for none)."""
    total = sum(layer.base_layer.weight.numel() for layer in layers.values())
    pruned = sum(layer.achieved_sparsity() * layer.base_layer.weight.numel() for layer in layers.values())
    return pruned / total if total else 0.0


def merge_and_unload(model: nn.Module) -> nn.Module:
    """Merge every sparse layer of ``model`` into a plain one and undo GPT-2's linearisation (in place)."""
    merge_sparse_layers(model)
    restore_conv1d(model)
    return model


def get_sparse_model(model: nn.Module, config: SparseConfig) -> SparseModel:
    """Sparsify ``model`` in place as ``config`` says and return the ``SparseModel`` that controls it."""
    if isinstance(model, SparseModel):
        raise ConfigError("this model is already a SparseModel; call get_sparse_model on a plain model")
    where = resolve_targets(model, config)
    method = config.method_view()
    if where["conv1d"]:
        linearize_conv1d(model, where["conv1d"], where["qkv"])
    layers = {}
    if get_method(config.method).sparse:
        layers = sparsify(model, where["targets"], method)
        apply_structure(model, layers, method, where["units"])
        gathering = [layer for layer in layers.values() if getattr(layer, "collects_inputs", False)]
        if gathering:  # Wanda, SparseGPT: input statistics over the batch's non-padding tokens
            install_token_mask(model, gathering)
    configure_trainable(model, method, where["heads"])
    return SparseModel(model, config, layers)


class SparseModel(nn.Module):
    """A sparsified model and its controls; calls and unknown attributes go to the model.

    ``forward`` carries the model's own signature, so ``transformers.Trainer`` keeps the dataset
    columns the model takes (it inspects the signature to drop the others).
    """

    def __init__(self, model: nn.Module, config: SparseConfig, layers: dict):
        super().__init__()
        self.base_model = model
        self.sparse_config = config
        self._layers = layers
        self._bind_forward()

    def _bind_forward(self) -> None:
        """``forward`` as an instance function that wraps the model's (its signature, its docstring)."""

        def forward(*args, **kwargs):
            outputs = self.base_model(*args, **kwargs)
            if self.training and torch.is_grad_enabled() and getattr(outputs, "loss", None) is not None:
                penalty = self.penalty()  # soft movement pruning's λ·R(S): part of the loss a Trainer minimises
                if penalty is not None:
                    outputs["loss"] = outputs.loss + penalty
            return outputs

        self.forward = functools.update_wrapper(forward, self.base_model.forward)

    def __getstate__(self) -> dict:  # pickle: the bound forward is rebuilt on the other side
        state = self.__dict__.copy()
        state.pop("forward", None)
        return state

    def __setstate__(self, state: dict) -> None:  # also deepcopy: the copy's forward calls the copy's model
        super().__setstate__(state)
        self._bind_forward()

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "base_model":
                raise
            return getattr(self.base_model, name)

    def get_base_model(self) -> nn.Module:
        return self.base_model

    @property
    def sparse_layers(self) -> dict:
        """{module name: sparse layer} of the wrapped model."""
        return dict(self._layers)

    # -- the schedule --------------------------------------------------------------
    def set_sparsity(self, sparsity: float) -> None:
        """Every sparse layer's target sparsity; the masks follow at the next forward."""
        set_sparsity(self.base_model, sparsity)

    def schedule(self, total_steps: int) -> CubicSchedule:
        """The config's cubic schedule over ``total_steps`` optimizer steps: ``set_sparsity(schedule(step))``.

        A method that prunes once (``prunes_once``) holds the target sparsity at every step; its knots (the
        final window the selection rule reads) stay those of the config."""
        c = self.sparse_config
        initial = c.sparsity if self.prunes_once else c.initial_sparsity
        return CubicSchedule(c.sparsity, total_steps, initial, c.warmup_frac, c.cooldown_frac)

    # -- pruning once from calibration data ------------------------------------------
    @property
    def prunes_once(self) -> bool:
        """Whether the method prunes once, before training, from calibration batches (SparseGPT, one-shot
        Wanda): ``calibrate`` then fixes the masks."""
        return get_method(self.sparse_config.method).is_one_shot(self.sparse_config.method_view())

    def needs_calibration(self) -> bool:
        """True while a layer of a one-shot method has no mask yet (a resumed run's masks are restored)."""
        return any(not layer.is_calibrated for layer in one_shot_layers(self._layers).values())

    def calibrate(self, batches) -> dict:
        """Prune once at the target sparsity from ``batches`` (dicts of model inputs, e.g. a DataLoader's
        collated batches; labels are dropped), layer block by layer block; the masks then stay fixed.

        Returns {seconds, samples, tokens, blocks}. The method's ``calibration_samples`` key says how many
        sequences the runner draws; here the caller chooses the batches."""
        layers = one_shot_layers(self._layers)
        if not layers:
            raise ConfigError(
                f"method={self.sparse_config.method} does not prune once: calibrate is for method=sparsegpt "
                "and method=wanda with schedule=oneshot"
            )
        self.set_sparsity(self.sparse_config.sparsity)
        device = next(self.base_model.parameters()).device
        inputs = [
            {key: value.to(device) for key, value in batch.items() if key not in ("labels", "label")}
            for batch in batches
        ]
        if not inputs:
            raise ConfigError("calibrate needs at least one batch of calibration inputs")
        return calibrate_sequentially(self.base_model, layers, inputs)

    def penalty(self) -> torch.Tensor | None:
        """The method's loss term (soft movement pruning: λ_t · mean over matrices of mean σ(S)), or None.

        ``forward`` adds it to the model's loss in training mode, so a ``transformers.Trainer`` minimises it."""
        return method_penalty(self.base_model)

    def achieved_sparsity(self) -> float:
        """Pruned share of all sparsified weights under the current masks."""
        return overall_sparsity(self._layers)

    # -- counting ------------------------------------------------------------------
    def get_nb_trainable_parameters(self) -> tuple[int, int]:
        """(trainable, all) parameter counts; the method's added matrices count in both."""
        params = list(self.base_model.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def print_trainable_parameters(self) -> None:
        trainable, total = self.get_nb_trainable_parameters()
        weights = sum(layer.base_layer.weight.numel() for layer in self._layers.values())
        print(
            f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}"
            f" || method: {self.sparse_config.method}, {len(self._layers)} sparsified matrices ({weights:,} weights),"
            f" {describe_structure(self._layers, self.sparse_config.method_view())}"
        )

    # -- export --------------------------------------------------------------------
    def merge_and_unload(self) -> nn.Module:
        """The plain transformers model with W* = M ⊙ W in place of every sparse layer (GPT-2: Conv1D again).

        The masks are those of the current sparsity: set the final one first (``schedule(...)(total)``).
        """
        self._layers = {}
        return merge_and_unload(self.base_model)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What training changed: every parameter that trains, by its name in the wrapped model.

        PST: the factors and scores (U, V, A, B, R, C) and the head; MvP and MaP train every weight, so
        theirs is the whole model. Tied tensors are stored once. The sparse layers' state buffers (Wanda's
        input statistics, a one-shot method's mask) are kept too: the masks depend on them.
        """
        state, seen = {}, set()
        for name, param in self.base_model.named_parameters(remove_duplicate=False):
            if param.requires_grad and param.data_ptr() not in seen:
                seen.add(param.data_ptr())
                state[name] = param.detach().contiguous().cpu()
        state.update({name: b.detach().contiguous().cpu() for name, b in method_buffers(self.base_model).items()})
        return state

    def save_pretrained(self, folder: str | Path) -> Path:
        """``sparse_adapter.safetensors`` (the trained state) and ``sparse_config.json`` (the config and the
        sparsity the masks were at), written atomically; ``load_sparse_model`` reattaches them."""
        folder = Path(folder)
        sparsity = next(iter(self._layers.values())).sparsity if self._layers else 0.0
        meta = {
            "format_version": FORMAT_VERSION,
            "config": self.sparse_config.to_dict(),
            "sparsity": sparsity,
            "model_type": model_type_of(self.base_model),
            "base_model": getattr(getattr(self.base_model, "config", None), "_name_or_path", None),
        }
        with atomic_folder(folder) as partial:
            save_file(self.trained_state(), str(partial / WEIGHTS_NAME), metadata={"format": "pt"})
            (partial / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")
        return folder


def load_sparse_model(model: nn.Module, folder: str | Path) -> SparseModel:
    """Reattach a ``save_pretrained`` folder to a fresh copy of its base model (masks at the saved sparsity)."""
    folder = Path(folder)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder} has no {name}: not a folder written by SparseModel.save_pretrained")
    meta = json.loads((folder / CONFIG_NAME).read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        version = meta.get("format_version")
        raise ConfigError(f"{folder / CONFIG_NAME}: format_version {version} is not {FORMAT_VERSION}")
    if meta.get("model_type") != model_type_of(model):
        raise ConfigError(
            f"{folder} was saved from a {meta.get('model_type')!r} model; this one is {model_type_of(model)!r}"
        )
    sparse = get_sparse_model(model, SparseConfig.from_dict(meta["config"]))
    try:
        state = load_file(str(folder / WEIGHTS_NAME))
    except Exception as err:  # a truncated or corrupt file: safetensors' own message says little
        raise ConfigError(f"{folder / WEIGHTS_NAME} is unreadable: {type(err).__name__}: {err}") from err
    own = {**dict(sparse.base_model.named_parameters(remove_duplicate=False)), **method_buffers(sparse.base_model)}
    unknown = sorted(set(state) - set(own))
    missing = sorted(set(sparse.trained_state()) - set(state))
    if unknown or missing:
        raise ConfigError(
            f"{folder}: the adapter does not fit this model (unknown keys {unknown[:3]}, missing {missing[:3]})"
        )
    wrong = [name for name, tensor in state.items() if tensor.shape != own[name].shape]
    if wrong:
        saved_from = meta.get("base_model") or f"a {meta.get('model_type')} model"
        this = getattr(getattr(model, "config", None), "_name_or_path", None) or "this model"
        more = f"; {len(wrong) - 1} more tensors differ" if len(wrong) > 1 else ""
        raise ConfigError(
            f"{folder}: the adapter was saved from a base model of another shape ({saved_from}): tensor {wrong[0]} "
            f"is {tuple(state[wrong[0]].shape)} in the adapter, {tuple(own[wrong[0]].shape)} in {this}{more}"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            own[name].copy_(tensor.to(own[name].device, own[name].dtype))
    sparse.set_sparsity(float(meta["sparsity"]))
    return sparse
