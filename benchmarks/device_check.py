"""CUDA check of the library path: ERM (AMP) -> last-layer influence (exact + LiSSA) -> selection -> retraining."""
import time, torch, numpy as np
from dataset_pruning.data import load_dataset
from dataset_pruning.training import TrainingConfig, ModelSpec, fit, evaluate
from dataset_pruning.scoring import score_samples
from dataset_pruning.selection import select_removed, theorem_quantities
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
tr, te = load_dataset("mnist1d", seed=42)
for device in ["cuda", "cpu"]:
    spec = ModelSpec("cnn1d", tr.input_shape, 10); m = spec.build(0)
    cfg = TrainingConfig(epochs=60, lr=0.1, device=device)
    t = time.time(); fit(m, tr, cfg, progress=False); t_fit = time.time() - t
    full = evaluate(m, te, device=device)
    t = time.time(); S = score_samples("last_layer_influence", m, tr, device=device, progress=False).values.numpy(); t_s = time.time() - t
    S2 = score_samples("last_layer_influence", m, tr, device=device, hessian="lissa", progress=False).values.numpy()
    removed = select_removed(S, problem="cardinality", solver="greedy", ratio=0.5)
    keep = np.setdiff1d(np.arange(len(tr)), removed)
    m2 = spec.build(0); fit(m2, tr.subset(torch.as_tensor(keep)), cfg, progress=False)
    pruned = evaluate(m2, te, device=device)
    print(device, "fit %.1fs" % t_fit, "score %.2fs" % t_s, "full", full, "pruned", pruned, theorem_quantities(S, removed)["eps"],
          "lissa-vs-exact corr %.3f" % np.corrcoef(S.ravel(), S2.ravel())[0, 1])
