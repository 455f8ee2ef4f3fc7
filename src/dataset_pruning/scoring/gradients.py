"""The shared base of the gradient-based scorers: a model as a pure function of one flat parameter vector.

Per-sample gradients are ``vmap(grad(loss of one sample))`` over a batch (torch.func), Hessian-vector products
the pullback of ``grad(mean loss)`` vmapped over the vectors: never a Python loop over samples. Memory per call depends
on the batch size (and on the number of vectors), not on n; only the returned scores grow with n.

Notation: P is the number of differentiated parameters; theta is a flat tensor of shape (P,), concatenated in
``named_parameters`` order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vjp, vmap
from tqdm.auto import tqdm

from dataset_pruning.data.base import TensorData
from dataset_pruning.runtime import resolve_device, seeded_global_rng, torch_generator

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}") from None


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` (b, C) against ``y`` (b,), equal to ``F.cross_entropy`` but written as
    softplus(logsumexp_{j != y}(z_j - z_y)) so that its gradient keeps its relative precision on a well-fit sample:
    through ``F.cross_entropy`` the y-entry p_y - 1 cancels to 0 in float32 once 1 - p_y < 6e-8 (8.5 % of the
    samples of MNIST-1D's trained cnn1d, whose float32 per-sample gradients were then up to 122 % off the float64
    ones, 9 % on average; 1.2e-5 at most this way). Here that entry is -sigmoid(a), computed without cancellation."""
    true = logits.gather(1, y[:, None])
    own = torch.arange(logits.shape[1], device=logits.device) == y[:, None]
    others = (logits - true).masked_fill(own, float("-inf"))
    return F.softplus(torch.logsumexp(others, dim=1)).mean()


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


class FunctionalModel:
    """``model`` (deep-copied, eval mode) as a function of theta, on ``device`` in ``dtype``.

    parameters : names of the differentiated parameters (default: all that require grad); the others and the
    buffers (batch-norm running statistics) are held fixed, so per-sample gradients are well defined.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        parameters: Sequence[str] | None = None,
        device: str = "auto",
        dtype: str | torch.dtype = "float32",
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype)
        self.module = copy.deepcopy(model).to(device=self.device, dtype=self.dtype).eval()
        named = dict(self.module.named_parameters())
        if parameters is None:
            names = [name for name, p in named.items() if p.requires_grad]
        else:
            unknown = sorted(set(parameters) - set(named))
            if unknown:
                raise ValueError(f"unknown parameter names {unknown}; the model has: {', '.join(named)}")
            names = [name for name in named if name in set(parameters)]
        if not names:
            raise ValueError("no parameters to differentiate: pass parameter names the model has")
        self.names = names
        self.shapes = [named[name].shape for name in names]
        self.sizes = [named[name].numel() for name in names]
        self.fixed = {name: p.detach() for name, p in named.items() if name not in set(names)}
        self.fixed.update({name: b for name, b in self.module.named_buffers()})
        self.theta = torch.cat([named[name].detach().flatten() for name in names])

    @property
    def num_parameters(self) -> int:
        return int(self.theta.numel())

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            name: chunk.view(shape)
            for name, chunk, shape in zip(self.names, torch.split(theta, self.sizes), self.shapes)
        }

    def flatten_state(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """theta of shape (P,) from a ``state_dict``-like mapping (a checkpoint)."""
        return torch.cat([state[name].detach().flatten() for name in self.names]).to(self.device, self.dtype)

    def logits(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, {**self.fixed, **self.unflatten(theta)}, (x,))

    def sample_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of one sample (x without its batch dimension)."""
        return cross_entropy(self.logits(theta, x.unsqueeze(0)), y.unsqueeze(0))

    def mean_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(self.logits(theta, x), y)

    def per_sample_gradients(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """grad l(z_i; theta) for each sample of the batch: shape (b, P)."""
        return vmap(grad(self.sample_loss), in_dims=(None, 0, 0))(theta, x, y)

    def hvp(
        self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, vectors: torch.Tensor, *, chunk: int | None = None
    ) -> torch.Tensor:
        """Hessian of the batch's mean loss times each row of ``vectors`` (k, P): shape (k, P).

        Reverse over reverse: the gradient's graph is built once for the batch and its pullback (v -> v^T H = H v)
        is vmapped over ``chunk`` vectors at a time (None: all). Forward over reverse (jvp of grad, vmapped)
        recomputes the gradient for every chunk: with it (and batches of 256) benchmarks/influence_peers.py's solve
        was 1.8-1.9x faster than pyDVL's, with this (and batches of 128) 4.0-4.2x (docs/scoring.md).
        """
        _, pullback = vjp(lambda t: grad(self.mean_loss)(t, x, y), theta)
        return _in_chunks(lambda v: pullback(v)[0], vectors, chunk)

    def ggn_vp(
        self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, vectors: torch.Tensor, *, chunk: int | None = None
    ) -> torch.Tensor:
        """Generalised Gauss-Newton J^T (diag p - p p^T) J of the batch's mean cross-entropy times each row of
        ``vectors`` (k, P): shape (k, P). Positive semi-definite, equal to the Hessian for a linear model.
        The logits' forward pass and pullback are built once for the batch, then vmapped over ``chunk`` vectors."""

        def logits(t: torch.Tensor) -> torch.Tensor:
            return self.logits(t, x)

        out, pullback = vjp(logits, theta)
        p = torch.softmax(out, dim=1)

        def one(v: torch.Tensor) -> torch.Tensor:
            jv = jvp(logits, (theta,), (v,))[1]
            u = p * jv - p * (p * jv).sum(1, keepdim=True)
            return pullback(u / len(x))[0]

        return _in_chunks(one, vectors, chunk)

    def to_device(self, data: TensorData, index: slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return data.x[index].to(self.device, self.dtype), data.y[index].to(self.device)


def _in_chunks(product, vectors: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """``vmap(product)`` over the rows of ``vectors`` (k, P), ``chunk`` rows at a time (None: all): shape (k, P)."""
    return torch.cat([vmap(product)(vectors[k]) for k in batch_slices(len(vectors), chunk or len(vectors))])


LAYER_GRADIENTS = (nn.Linear, nn.Conv1d, nn.Conv2d)  # layers whose per-sample gradients come from their inputs


def layerwise(model: nn.Module) -> bool:
    """Whether every parameter of ``model`` belongs to a Linear, Conv1d or Conv2d layer (zero padding, one group),
    so that ``per_sample_gradient_norms`` can take per-sample gradients layer by layer."""
    for module in model.modules():
        if not any(p.requires_grad for p in module.parameters(recurse=False)):
            continue
        if not isinstance(module, LAYER_GRADIENTS):
            return False
        if isinstance(module, (nn.Conv1d, nn.Conv2d)) and (module.groups != 1 or module.padding_mode != "zeros"
                                                           or isinstance(module.padding, str)):
            return False
    return True


def _sample_gradient_parts(module: nn.Module, inputs: torch.Tensor, delta: torch.Tensor):
    """The per-sample gradients of ``module``'s parameters from its input and the loss's gradient at its output, in
    parts that cover each parameter once: (parameter, index into it, entries (b, m)); a Linear with one position
    per sample yields (weight, None, (delta (b, out), input (b, in))), the gradient being their outer product.
    A convolution's weight comes one kernel position at a time, a batched product over the shifted input (never
    the unfolded patches, which F.unfold took 5x longer to form on the CPU, nor (b, C_out, C_in, k) at once)."""
    b = len(inputs)
    if isinstance(module, nn.Linear):
        if inputs.ndim == 2:
            yield module.weight, None, (delta, inputs)
        else:  # positions in the middle dimensions: sum of outer products over them
            yield module.weight, (), torch.bmm(delta.reshape(b, -1, delta.shape[-1]).transpose(1, 2),
                                               inputs.reshape(b, -1, inputs.shape[-1])).reshape(b, -1)
        bias = delta.reshape(b, -1, delta.shape[-1]).sum(1)
    else:
        if isinstance(module, nn.Conv1d):  # as a Conv2d of height 1
            inputs, delta = inputs[:, :, None], delta[:, :, None]
            kernel, dilation = (1, module.kernel_size[0]), (1, module.dilation[0])
            padding, stride = (0, module.padding[0]), (1, module.stride[0])
        else:
            kernel, dilation, padding, stride = module.kernel_size, module.dilation, module.padding, module.stride
        h_out, w_out = delta.shape[2:]
        x = F.pad(inputs, (padding[1], padding[1], padding[0], padding[0]))
        d = delta.reshape(b, delta.shape[1], -1)  # (b, C_out, T)
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                top, left = i * dilation[0], j * dilation[1]
                shifted = x[:, :, top : top + stride[0] * (h_out - 1) + 1 : stride[0],
                            left : left + stride[1] * (w_out - 1) + 1 : stride[1]]  # (b, C_in, H', W')
                part = torch.bmm(d, shifted.reshape(b, x.shape[1], -1).transpose(1, 2))  # (b, C_out, C_in)
                index = (slice(None), slice(None), j) if isinstance(module, nn.Conv1d) else \
                    (slice(None), slice(None), i, j)
                yield module.weight, index, part.reshape(b, -1)
        bias = d.sum(2)
    if module.bias is not None and module.bias.requires_grad:
        yield module.bias, (), bias


def per_sample_gradient_norms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, along: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """||grad l(z_i)||^2 over every parameter, and <grad l(z_i), along> when ``along`` (P,) is given (flat, in
    ``named_parameters`` order, as ``FunctionalModel.theta``): two float64 tensors of shape (b,) (or None).

    For a ``layerwise`` model in eval mode: one forward and one backward pass of the batch's summed loss
    (``cross_entropy``), then each layer's per-sample gradients from its inputs and output gradients (Linear:
    ||d||^2 ||a||^2 and d^T V a, never the (b, out, in) gradients; convolutions: unfolded patches times output
    gradients, one kernel position at a time). The same numbers as ``FunctionalModel.per_sample_gradients`` to
    float32 rounding, without vmapping the backward pass over the batch: 256 Fashion-MNIST samples through cnn2d
    took 1.2 s against vmap's 6.6 s on one thread (MNIST-1D's small cnn1d: 0.13 s against 0.09 s).
    """
    if not layerwise(model) or model.training:
        raise ValueError("per_sample_gradient_norms needs a model in eval mode with Linear / Conv1d / Conv2d "
                         "parameters only; use FunctionalModel.per_sample_gradients")
    layers = [module for module in model.modules() if isinstance(module, LAYER_GRADIENTS)
              and any(p.requires_grad for p in module.parameters(recurse=False))]
    seen: dict[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]] = {layer: [] for layer in layers}
    handles = [layer.register_forward_hook(lambda m, inp, out: seen[m].append((inp[0].detach(), out)))
               for layer in layers]
    try:
        with torch.enable_grad():
            loss = cross_entropy(model(x), y) * len(x)  # the sum of the per-sample losses
            if any(len(calls) != 1 for calls in seen.values()):
                raise ValueError("per_sample_gradient_norms: a layer ran more or less than once in the forward pass")
            deltas = torch.autograd.grad(loss, [seen[layer][0][1] for layer in layers])
    finally:
        for handle in handles:
            handle.remove()
    offsets, start = {}, 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            offsets[p] = (start, start + p.numel())
            start += p.numel()
    squares = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    dots = None if along is None else torch.zeros_like(squares)
    for layer, delta in zip(layers, deltas):
        for parameter, index, part in _sample_gradient_parts(layer, seen[layer][0][0], delta.detach()):
            a, b = offsets[parameter]
            v = None if along is None else along[a:b].view_as(parameter).double()
            if index is None:  # Linear, one position: the gradient is d a^T
                d, inputs = part[0].double(), part[1].double()
                squares += d.pow(2).sum(1) * inputs.pow(2).sum(1)
                if v is not None:
                    dots += ((inputs @ v.T) * d).sum(1)
                continue
            g = part.double()
            squares += g.pow(2).sum(1)
            if v is not None:
                dots += g @ v[index].reshape(-1)
    return squares, dots


def per_sample_gradients(
    fm: FunctionalModel,
    data: TensorData,
    *,
    theta: torch.Tensor | None = None,
    projection: torch.Tensor | None = None,
    batch_size: int = 256,
    progress: bool = False,
    desc: str = "per-sample gradients",
) -> torch.Tensor:
    """Per-sample gradients of all samples, shape (n, P), or projected ``G @ projection.T``, shape (n, k).

    Computed ``batch_size`` samples at a time; with a projection (k, P) the peak memory is O(batch_size * P + n * k).
    """
    theta = fm.theta if theta is None else theta
    rows = []
    for index in tqdm(list(batch_slices(len(data), batch_size)), desc=desc, disable=not progress, leave=False):
        g = fm.per_sample_gradients(theta, *fm.to_device(data, index))
        rows.append(g if projection is None else g @ projection.T)
    return torch.cat(rows)


def mean_hvp(
    fm: FunctionalModel,
    data: TensorData,
    vectors: torch.Tensor,
    *,
    theta: torch.Tensor | None = None,
    batch_size: int = 128,
    vector_chunk: int = 16,
    curvature: str = "hessian",
) -> torch.Tensor:
    """(mean Hessian of the loss over all of ``data``) times each row of ``vectors`` (k, P): shape (k, P).

    curvature : ``hessian`` (exact), or ``gauss_newton`` (its positive semi-definite Gauss-Newton part).
    Memory O(vector_chunk * batch_size * activations): both the samples and the vectors are taken in chunks.
    Small chunks stay in cache: 200 vectors over 500 samples of MNIST-1D's cnn1d (one thread) took 4.2 s with
    vector_chunk 16 against 5.3 s with 64; batches of 128 samples beat 256 likewise.
    """
    theta = fm.theta if theta is None else theta
    if curvature not in ("hessian", "gauss_newton"):
        raise ValueError(f"unknown curvature {curvature!r}; known: hessian, gauss_newton")
    product = fm.hvp if curvature == "hessian" else fm.ggn_vp
    out = torch.zeros_like(vectors)
    n = len(data)
    for index in batch_slices(n, batch_size):
        x, y = fm.to_device(data, index)
        out += (index.stop - index.start) / n * product(theta, x, y, vectors, chunk=vector_chunk)
    return out


def gaussian_projection(num_parameters: int, dim: int, *, seed: int, device, dtype) -> torch.Tensor:
    """R of shape (dim, P) with i.i.d. N(0, 1/dim) entries, so E ||R v||^2 = ||v||^2 and the norm of any sum of
    projected vectors approximates the norm of the sum (Johnson-Lindenstrauss): eps survives the projection."""
    if dim < 1:
        raise ValueError(f"projection_dim must be >= 1 (or null for no projection), got {dim}")
    r = torch.randn(dim, num_parameters, generator=torch_generator(seed), dtype=torch.float64)
    return (r / dim**0.5).to(device=device, dtype=dtype)


def reinitialised(model: nn.Module, seed: int) -> nn.Module:
    """A CPU copy of ``model`` with fresh weights from its layers' own initialisers, seeded (no global seeding)."""
    fresh = copy.deepcopy(model).cpu()
    with seeded_global_rng(seed):
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh


__all__ = [
    "FunctionalModel",
    "batch_slices",
    "gaussian_projection",
    "mean_hvp",
    "layerwise",
    "per_sample_gradient_norms",
    "per_sample_gradients",
    "reinitialised",
    "resolve_dtype",
]
