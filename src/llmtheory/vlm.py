"""What the visual-token chapters (``priortr``, ``clse``, ``adaq``) share: looking inside a LLaVA-style model.

Three tools, for the zoo's tiny LLaVA (``zoo.load("vlm-llava-scenes")``) and for a real one such as
``llava-hf/llava-1.5-7b-hf`` alike (anything with ``model.model.get_image_features``, ``model.model.language_model``
a Llama-style decoder, and ``model.lm_head``):

* :func:`text_to_image_attention` — per layer, the attention of every position onto the image tokens (needs eager
  attention; the function switches to it for the call). Rows of interest: the **null token** right after the image
  (:func:`null_positions`; under the causal mask it cannot see the question, so its row is an instruction-free
  prior) and the last token (what the question attends to);
* :func:`visual_hidden_states` — per layer, the hidden states of the visual tokens laid out on the patch grid
  (``(layers + 1, batch, rows, cols, hidden)``, index 0 being the merged input embedding), for spectral scores;
* :func:`forward_dropping_visual_tokens` — a forward pass that runs the first ``layer`` decoder layers on every
  token, then physically drops the visual tokens not kept and runs the remaining layers on the shorter sequence,
  **keeping the original positions** (RoPE sees each kept token where it was). With nothing dropped it equals the
  normal forward exactly. Which tokens to keep can be decided inside the same pass from the hidden states and
  attention weights of the layers already run (as FastV, PriorTR and CLSE do). With ``cache=True`` it also
  returns the pruned KV cache, and :func:`decode_step` decodes from it at the original positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .params import ParameterError, check_int


def _image_token_id(model) -> int:
    config = model.config
    return int(getattr(config, "image_token_id", None) or config.image_token_index)


def image_positions(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Sequence positions of the image tokens, ``(batch, n_image)`` (every row must hold the same number)."""
    is_image = input_ids == _image_token_id(model)
    counts = is_image.sum(1)
    if not bool((counts == counts[0]).all()) or int(counts[0]) == 0:
        raise ParameterError(f"every row needs the same, positive number of image tokens; got {counts.tolist()}")
    return is_image.nonzero()[:, 1].reshape(len(input_ids), -1)


def null_positions(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Position of the token right after the last image token in each row (LLaVA's ``\\n``): ``(batch,)``."""
    return image_positions(model, input_ids)[:, -1] + 1


def last_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of the last real token of each row of a right-padded batch: ``(batch,)``."""
    return attention_mask.long().sum(1) - 1


def grid_shape(n_image: int) -> tuple[int, int]:
    """The square patch grid of ``n_image`` visual tokens."""
    side = math.isqrt(n_image)
    if side * side != n_image:
        raise ParameterError(f"{n_image} visual tokens do not form a square grid")
    return side, side


def merged_embeddings(model, input_ids, pixel_values, **_) -> torch.Tensor:
    """The language model's input: token embeddings with the projected image features in the image slots."""
    embeddings = model.get_input_embeddings()(input_ids)
    features = model.model.get_image_features(pixel_values=pixel_values, return_dict=True).pooler_output
    features = torch.cat(list(features), dim=0).to(embeddings.dtype)
    slots = (input_ids == _image_token_id(model)).unsqueeze(-1).expand_as(embeddings)
    return embeddings.masked_scatter(slots, features)


class _Eager:
    """Context manager: eager attention for the duration (attention weights need it), then back."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.previous = self.model.config._attn_implementation
        if self.previous != "eager":
            self.model.set_attn_implementation("eager")
        return self.model

    def __exit__(self, *exc):
        if self.previous != "eager":
            self.model.set_attn_implementation(self.previous)


@torch.no_grad()
def text_to_image_attention(model, inputs: dict) -> torch.Tensor:
    """Attention weights onto the image tokens, per layer: ``(layers, batch, heads, seq, n_image)``.

    Row ``q`` of layer ``l`` is how much query position ``q`` attends to each visual token in that layer (softmax
    weights over the whole sequence, not renormalised). ``inputs``: the processor's output (or
    :func:`llmtheory.zoo.vlm.make_inputs`).
    """
    with _Eager(model):
        out = model(**_model_inputs(inputs), output_attentions=True)
    if out.attentions is None or out.attentions[0] is None:
        raise RuntimeError("the model returned no attention weights; load it with attn_implementation='eager'")
    columns = image_positions(model, inputs["input_ids"])
    index = columns[:, None, None, :]
    return torch.stack(
        [a.gather(-1, index.expand(a.shape[0], a.shape[1], a.shape[2], columns.shape[1])) for a in out.attentions]
    )


@torch.no_grad()
def visual_hidden_states(model, inputs: dict) -> torch.Tensor:
    """Hidden states of the visual tokens on the patch grid: ``(layers + 1, batch, rows, cols, hidden)``.

    Index 0 is the language model's input (the projected image features), index ``l`` the output of decoder
    layer ``l`` (the last one before the final norm).
    """
    out = model(**_model_inputs(inputs), output_hidden_states=True)
    positions = image_positions(model, inputs["input_ids"])
    rows, cols = grid_shape(positions.shape[1])
    states = []
    for h in out.hidden_states:
        picked = h.gather(1, positions[..., None].expand(-1, -1, h.shape[-1]))
        states.append(picked.reshape(h.shape[0], rows, cols, h.shape[-1]))
    return torch.stack(states)


def _model_inputs(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "pixel_values")}


@dataclass
class DropContext:
    """What a keep-rule sees at the pruning layer ``layer``: the hidden states entering decoder layers
    ``0..layer`` (``hidden[0]`` is the input embedding, ``hidden[layer]`` what the first pruned layer would get),
    and the attention weights of decoder layers ``0..layer-1`` (``None`` unless ``attentions=True``)."""

    layer: int
    hidden: list[torch.Tensor]
    attentions: list[torch.Tensor] | None
    image_positions: torch.Tensor
    null_positions: torch.Tensor
    last_positions: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


@dataclass
class DropOutput:
    """``logits``: ``(batch, kept sequence, vocab)``; ``positions``: the original position of each kept token;
    ``kept``: indices (0..n_image-1, sorted) of the visual tokens kept; ``last_logits``: the logits at the last real
    token of each row (the next-word distribution after the prompt)."""

    logits: torch.Tensor
    positions: torch.Tensor
    kept: torch.Tensor
    last_logits: torch.Tensor
    cache: object | None = None
    """With ``cache=True``: a ``DynamicCache`` holding, in every layer, the keys and values of the kept tokens only."""
    attention_mask: torch.Tensor | None = None
    """The attention mask over the kept sequence (the padding of a right-padded batch stays masked)."""


def _as_indices(keep, n_image: int, batch: int) -> torch.Tensor:
    if keep is None:
        return torch.arange(n_image).expand(batch, n_image)
    keep = torch.as_tensor(keep)
    if keep.dtype == torch.bool:
        counts = keep.sum(1)
        if not bool((counts == counts[0]).all()):
            raise ParameterError(f"a keep mask must keep the same number of tokens in every row; got {counts.tolist()}")
        keep = keep.nonzero()[:, 1].reshape(batch, -1)
    if keep.ndim == 1:
        keep = keep.expand(batch, -1)
    if keep.numel() and (int(keep.min()) < 0 or int(keep.max()) >= n_image):
        raise ParameterError(f"visual token indices must lie in [0, {n_image}); got {keep.min()}..{keep.max()}")
    return keep.sort(dim=1).values


@torch.no_grad()
def forward_dropping_visual_tokens(
    model,
    inputs: dict,
    layer: int,
    keep: torch.Tensor | Callable[[DropContext], torch.Tensor] | None = None,
    *,
    attentions: bool = False,
    cache: bool = False,
) -> DropOutput:
    """Run the language model with the visual tokens not in ``keep`` removed from decoder layer ``layer`` on.

    ``layer``: how many decoder layers see every token (0 drops at the language model's input; FastV's "K = 2"
    is ``layer=2``). ``keep``: visual-token indices (0..n_image-1) per row, ``(batch, n_keep)`` or ``(n_keep,)``, or a
    boolean mask ``(batch, n_image)`` with the same count per row, or ``None`` (keep all), or a function of a
    :class:`DropContext` returning one of these (``attentions=True`` gives it the attention weights of the layers
    already run; that needs eager attention, switched on for the call). Kept tokens keep their original positions
    (rotary embeddings are computed from them) and their order; text tokens are never dropped.

    ``cache=True`` also returns the KV cache for decoding (:func:`decode_step`). As in PriorTR's official
    ``prunable_llama.py``, the dropped tokens leave the cache of *every* layer, the first ``layer`` included (their
    keys and values there were computed with the full sequence): a decoded token never sees them.
    """
    n_layers = model.config.text_config.num_hidden_layers
    check_int("layer", layer, minimum=0, maximum=n_layers)
    input_ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(input_ids)
    batch, seq = input_ids.shape
    lm = model.model.language_model
    images = image_positions(model, input_ids)
    kv = _new_cache(model) if cache else None
    with _Eager(model) if attentions else _Nothing():
        hidden = merged_embeddings(model, input_ids, inputs["pixel_values"])
        positions = torch.arange(seq, device=input_ids.device).expand(batch, seq)
        recorded: list[torch.Tensor] = []
        hooks = []
        if attentions:
            for i in range(layer):
                hooks.append(lm.layers[i].self_attn.register_forward_hook(lambda _m, _a, out: recorded.append(out[1])))
        states = [hidden]
        try:
            hidden = _run_layers(lm, hidden, positions, mask, range(layer), states, kv)
        finally:
            for hook in hooks:
                hook.remove()
        if callable(keep):
            context = DropContext(
                layer=layer,
                hidden=states,
                attentions=recorded if attentions else None,
                image_positions=images,
                null_positions=images[:, -1] + 1,
                last_positions=last_positions(mask),
                input_ids=input_ids,
                attention_mask=mask,
            )
            keep = keep(context)
        kept = _as_indices(keep, images.shape[1], batch).to(input_ids.device)
        keep_mask = torch.ones(batch, seq, dtype=torch.bool, device=input_ids.device)
        keep_mask.scatter_(1, images, False)
        keep_mask.scatter_(1, images.gather(1, kept), True)
        new_len = int(keep_mask[0].sum())
        order = keep_mask.nonzero()[:, 1].reshape(batch, new_len)
        hidden = hidden.gather(1, order[..., None].expand(-1, -1, hidden.shape[-1]))
        positions, mask = positions.gather(1, order), mask.gather(1, order)
        if kv is not None:
            _gather_cache(kv, range(layer), order)
        hidden = _run_layers(lm, hidden, positions, mask, range(layer, n_layers), None, kv)
        logits = model.lm_head(lm.norm(hidden))
    last = last_positions(mask)
    return DropOutput(logits, positions, kept, logits[torch.arange(batch, device=last.device), last], kv, mask)


def _new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=model.config.text_config)


def _gather_cache(kv, layers, order: torch.Tensor) -> None:
    """Keep only the sequence entries ``order`` (batch, kept) in the cache of ``layers``."""
    for i in layers:
        entry = kv.layers[i]
        index = order[:, None, :, None].expand(-1, entry.keys.shape[1], -1, entry.keys.shape[-1])
        entry.keys, entry.values = entry.keys.gather(2, index), entry.values.gather(2, index)


@torch.no_grad()
def decode_step(model, state: DropOutput, tokens: torch.Tensor) -> DropOutput:
    """Feed one token per row (``tokens``: ``(batch,)``) to the cache of ``state`` (from
    :func:`forward_dropping_visual_tokens` with ``cache=True``, or an earlier step) and return the next state.

    The token goes at the **original** position after the row's last real token (the cache is shorter than the
    prompt once tokens are dropped; RoPE must not be renumbered from the cache length), and attends to every
    cached entry of its row except padding. ``last_logits`` of the result are the next-token logits; the cache is
    extended in place.
    """
    if state.cache is None or state.attention_mask is None:
        raise ParameterError("decode_step needs the state of forward_dropping_visual_tokens(..., cache=True)")
    lm = model.model.language_model
    batch = len(tokens)
    last = last_positions(state.attention_mask)
    device = state.attention_mask.device
    new_position = state.positions[torch.arange(batch, device=device), last][:, None] + 1
    hidden = lm.embed_tokens(torch.as_tensor(tokens, device=device)[:, None])
    mask = torch.cat([state.attention_mask, torch.ones_like(state.attention_mask[:, :1])], dim=1)
    additive = torch.zeros(batch, 1, 1, mask.shape[1], dtype=hidden.dtype, device=device)
    additive.masked_fill_(~mask.bool()[:, None, None, :], torch.finfo(hidden.dtype).min)
    rotary = lm.rotary_emb(hidden, position_ids=new_position)
    for decoder_layer in lm.layers:
        out = decoder_layer(
            hidden,
            attention_mask=additive,
            position_ids=new_position,
            past_key_values=state.cache,
            use_cache=True,
            position_embeddings=rotary,
        )
        hidden = out[0] if isinstance(out, tuple) else out
    logits = model.lm_head(lm.norm(hidden))
    positions = torch.cat([state.positions, new_position], dim=1)
    return DropOutput(logits, positions, state.kept, logits[:, -1], state.cache, mask)


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def _run_layers(lm, hidden, positions, mask, layers, states, kv=None):
    """Decoder layers ``layers`` of a Llama-style model on ``hidden`` with explicit original ``positions``.

    The causal mask is built over the (kept) sequence order, which is the original order; rotary embeddings use
    the original positions. ``kv``: a cache the layers write their keys and values into (prefill: it is empty
    for these layers).
    """
    from transformers.masking_utils import create_causal_mask

    order = torch.arange(hidden.shape[1], device=hidden.device).expand(hidden.shape[0], -1)
    causal = create_causal_mask(
        config=lm.config, inputs_embeds=hidden, attention_mask=mask, past_key_values=None, position_ids=order
    )
    rotary = lm.rotary_emb(hidden, position_ids=positions)
    for i in layers:
        out = lm.layers[i](
            hidden,
            attention_mask=causal,
            position_ids=positions,
            position_embeddings=rotary,
            past_key_values=kv,
            use_cache=kv is not None,
        )
        hidden = out[0] if isinstance(out, tuple) else out
        if states is not None:
            states.append(hidden)
    return hidden
