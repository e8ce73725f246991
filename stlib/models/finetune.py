"""A fine-tuned CNN: the ST-Net recipe (He et al. 2020) scaled to a 2-core machine.

ST-Net fine-tunes an ImageNet DenseNet-121 end to end on the spot windows, with a linear layer
for the genes, random flips and rotations, and early stopping. Here: MobileNetV2 with ImageNet
weights, its last blocks trainable (from ``first_trainable``, by default ``block_14_expand``:
blocks 14-16 and the final 1x1 convolution, about 1.5 M weights) and a dropout + linear head for
every gene, trained on the per-gene standardised targets with the mean squared error and early
stopping on the valid loss (the best epoch's weights are kept).

What makes it fit the machine: the frozen part of the network (every layer before
``first_trainable``, about 88% of its arithmetic) is run once per *view*, not once per epoch
(:func:`prepare_views`, shared by every fit of :func:`finetune_cnn` on the same windows).
Each train spot gets ``n_views`` augmented views, computed once: view ``v`` is the dihedral
transform ``v mod 8`` of the window (:func:`stlib.im.dihedral`: rotations by 90 degrees, with and
without a flip) under its own colour jitter (Keras ``RandomColorJitter``: brightness, contrast,
saturation, hue; seeded). Every epoch then draws one view per train spot (seeded) and trains the
last blocks on the stored activations of the frozen part. Batch-normalisation statistics stay
frozen (the network runs in inference mode, Keras' fine-tuning advice); their scale and shift
are trained. Valid and test spots are seen as they are (``tta=False``) or as the mean prediction
over their 8 dihedral transforms (``tta=True``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from stlib.errors import DataError
from stlib._compat import FLOAT, FLOATX, import_tf
from stlib.models._base import ModelResult

__all__ = ["FIRST_TRAINABLE", "JITTER", "FrozenViews", "finetune_cnn", "prepare_views", "split_network"]

#: First trainable layer of MobileNetV2 by default: blocks 14-16 and ``Conv_1`` are fine-tuned.
FIRST_TRAINABLE = "block_14_expand"
#: Colour jitter of the train views (Keras ``RandomColorJitter`` factors on 0-255 images).
JITTER: dict[str, Any] = {"brightness_factor": 0.1, "contrast_factor": 0.1, "saturation_factor": (0.45, 0.55),
                          "hue_factor": 0.02}


def split_network(model: Any, first_trainable: str) -> tuple[Any, Any]:
    """``(frozen, trainable)`` Keras models: the layers before ``first_trainable`` and the rest.

    ``trainable(frozen(x))`` equals ``model(x)``. The cut must be a point every later layer
    depends on only through it (the start of a MobileNetV2 block: ``block_<k>_expand``).

    Parameters
    ----------
    model
        A functional Keras model (e.g. the MobileNetV2 backbone).
    first_trainable
        Name of the layer where the trainable part starts; an unknown name or a cut that is not
        clean raises a :class:`~stlib.errors.DataError`.

    Returns
    -------
    tuple
        ``(frozen, trainable)``: Keras models sharing the layers (and weights) of ``model``.
    """
    _, keras = import_tf()

    names = [layer.name for layer in model.layers]
    if first_trainable not in names:
        starts = [n for n in names if n.endswith("_expand")]
        raise DataError("first_trainable", f"no layer {first_trainable!r} in {model.name}; block starts: {starts}")
    cut = model.get_layer(first_trainable).input
    frozen = keras.Model(model.input, cut, name="frozen")
    try:
        trainable = keras.Model(cut, model.output, name="trainable")
    except ValueError as e:
        raise DataError("first_trainable", f"{first_trainable!r} is not a clean cut of {model.name}: {e}") from None
    return frozen, trainable


def _views(windows: np.ndarray, frozen: Any, preprocess: Any, *, n_views: int, jitter: bool, seed: int,
           batch_size: int) -> np.ndarray:
    """``(n_views, n, *map)`` float16 activations of the frozen part for the augmented views."""
    _, keras = import_tf()

    from stlib.im import dihedral

    out = None
    for v in range(n_views):
        w = dihedral(windows, v % 8).astype(np.float32)  # pixel values: exact in float32; the network casts to FLOATX
        if jitter:
            layer = keras.layers.RandomColorJitter(value_range=(0, 255), seed=seed * 1000 + v, **JITTER)
            w = np.concatenate([np.asarray(layer(w[s:s + 256], training=True)) for s in range(0, len(w), 256)])
        maps = np.concatenate([np.asarray(frozen.predict_on_batch(preprocess(w[s:s + batch_size].copy())))
                               for s in range(0, len(w), batch_size)])
        if out is None:
            out = np.empty((n_views, *maps.shape), dtype=np.float16)
        out[v] = maps.astype(np.float16)
    assert out is not None
    return out


@dataclass
class FrozenViews:
    """Activations of the frozen part of the network, computed once and shared by every fit.

    ``train``: ``(n_views, n_train, *map)`` for the augmented views of the train spots;
    ``eval``: split -> ``(1 or 8, n, *map)`` for the plain (or 8 dihedral) views of every split.

    Parameters
    ----------
    train
        ``(n_views, n_train, *map)`` float16 activations of the augmented train views.
    eval
        Split -> ``(1 or 8, n, *map)`` float16 activations of the plain (or 8 dihedral) views.
    settings
        How the views were made: ``backbone``, ``weights``, ``first_trainable``, ``n_views``,
        ``jitter``, ``tta``, ``seed`` and ``seconds``.
    trainable
        The trainable part of the network (:func:`split_network`) with its pretrained weights;
        every fit clones it.
    initial_weights
        The pretrained weights of ``trainable``, restored into each clone.
    """

    train: np.ndarray
    eval: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    trainable: Any = None  # the trainable part, with its pretrained weights (cloned by every fit)
    initial_weights: list[np.ndarray] = field(default_factory=list)


def prepare_views(
    windows: Mapping[str, np.ndarray],
    *,
    backbone: str = "mobilenet_v2",
    weights: str | None = "imagenet",
    first_trainable: str = FIRST_TRAINABLE,
    n_views: int = 8,
    jitter: bool = True,
    tta: bool = False,
    batch_size: int = 32,
    seed: int = 0,
    eval_from: FrozenViews | None = None,
) -> FrozenViews:
    """Run the frozen part of the network over the augmented train views and the eval views.

    ``windows``: split -> ``(n, 224, 224, 3)`` uint8 spot windows (:func:`stlib.im.spot_windows`),
    with ``"train"`` and ``"valid"``. The views are stored as float16 (half the memory; the
    trainable blocks read them as float32). ``eval_from``: reuse the eval views of another
    :class:`FrozenViews` of the same windows, backbone and cut (for an ablation of the train
    views' augmentation; its ``tta`` is kept).

    Parameters
    ----------
    windows
        Split -> ``(n, 224, 224, 3)`` uint8 spot windows; ``"train"`` and ``"valid"`` required.
    backbone, weights
        The network and its weights (:func:`stlib.im.get_backbone`).
    first_trainable
        Name of the first layer of the trainable part (:func:`split_network`).
    n_views
        Augmented views per train spot (at least 1); view ``v`` is dihedral transform ``v mod 8``.
    jitter
        Apply the colour jitter :data:`JITTER` to the train views.
    tta
        Eval views: the 8 dihedral transforms (``True``) or the plain window (``False``).
    batch_size
        Windows per forward pass of the frozen part.
    seed
        Seed set before building the network, and of the colour jitter.
    eval_from
        Optional :class:`FrozenViews` whose eval views are reused (same backbone, weights and cut,
        else a ``ValueError``); then only the train views are computed.

    Returns
    -------
    FrozenViews
        The train and eval activations, the trainable part with its initial weights, and the
        settings (with ``seconds``: the time taken).
    """
    from stlib.im import get_backbone
    from stlib.models._keras import set_seed

    if "train" not in windows or "valid" not in windows:
        raise DataError("windows", "no train or no valid windows: the network is trained on train, stopped on valid")
    for s, w in windows.items():
        if w.ndim != 4 or w.shape[1:] != (224, 224, 3):
            raise DataError(s, f"windows must be (n, 224, 224, 3), got {w.shape}")
    if n_views < 1:
        raise ValueError(f"n_views must be >= 1, got {n_views}")
    set_seed(seed)
    t0 = time.perf_counter()
    model, preprocess = get_backbone(backbone, weights)
    frozen, trainable = split_network(model, first_trainable)
    train = _views(windows["train"], frozen, preprocess, n_views=n_views, jitter=jitter, seed=seed,
                   batch_size=batch_size)
    if eval_from is not None:
        same = {k: eval_from.settings.get(k) for k in ("backbone", "weights", "first_trainable")}
        if same != {"backbone": backbone, "weights": weights, "first_trainable": first_trainable}:
            raise ValueError(f"eval_from was computed with {same}, not with this backbone and cut")
        ev, tta = eval_from.eval, bool(eval_from.settings.get("tta"))
    else:
        n_eval = 8 if tta else 1
        ev = {s: _views(w, frozen, preprocess, n_views=n_eval, jitter=False, seed=seed, batch_size=batch_size)
              for s, w in windows.items()}
    return FrozenViews(train=train, eval=ev, settings={
        "backbone": backbone, "weights": weights, "first_trainable": first_trainable, "n_views": int(n_views),
        "jitter": dict(JITTER) if jitter else None, "tta": bool(tta), "seed": int(seed),
        "seconds": round(time.perf_counter() - t0, 1)}, trainable=trainable,
        initial_weights=[np.array(w) for w in trainable.get_weights()])


def finetune_cnn(
    views: FrozenViews,
    Y: Mapping[str, np.ndarray],
    *,
    epochs: int = 30,
    patience: int = 4,
    batch_size: int = 32,
    learning_rate: float = 3e-4,
    dropout: float = 0.2,
    train_blocks: bool = True,
    seed: int = 0,
    genes: Sequence[str] | None = None,
    name: str = "finetuned_cnn",
    progress: bool = False,
) -> ModelResult:
    """Fine-tune the last blocks of the network and a linear gene head on the train spots.

    Parameters
    ----------
    views
        The frozen part's activations (:func:`prepare_views`: backbone, cut, augmented views,
        test-time augmentation).
    Y
        ``"train"`` and ``"valid"`` targets ``(n, n_genes)`` (other splits are ignored: the test
        targets never reach this function).
    epochs, patience, batch_size, learning_rate, dropout
        Training: at most ``epochs`` epochs of Adam, stopped after ``patience`` epochs without a
        lower valid loss; the best epoch's weights are restored. Each epoch draws one augmented
        view per train spot.
    train_blocks
        ``False`` keeps the network's last blocks frozen and trains the head alone (a linear
        probe trained on the same augmented views): what fine-tuning the blocks adds.
    seed
        Seeds the head's weights, the views drawn and the batch order
        (:func:`stlib.models._keras.set_seed`: deterministic TensorFlow ops).
    genes
        Gene names, recorded in ``settings["genes"]`` (not checked against the targets).
    name
        Name of the returned result.
    progress
        Show a progress bar over the epochs (``tqdm``).

    Returns
    -------
    :class:`ModelResult` with ``predictions`` for every split of ``views.eval`` (target space),
    ``history`` (loss and valid loss per epoch, standardised targets) and ``settings``
    (configuration, best epoch, trainable weights, ``seconds`` for the views, the training and
    the predictions).
    """
    from stlib.models._keras import set_seed

    for s in ("train", "valid"):
        if s not in Y:
            raise DataError("Y", f"no {s} targets: the network is trained on train, stopped on valid")
    n_train, n_valid = views.train.shape[1], views.eval["valid"].shape[1]
    if len(Y["train"]) != n_train or len(Y["valid"]) != n_valid:
        raise DataError("Y", f"{len(Y['train'])} train and {len(Y['valid'])} valid rows of targets for "
                             f"{n_train} and {n_valid} windows")
    set_seed(seed)
    _, keras = import_tf()

    cfg = views.settings
    n_views = views.train.shape[0]
    train_views, eval_views = views.train, views.eval
    trainable = keras.models.clone_model(views.trainable)  # a fresh copy with the pretrained weights
    trainable.set_weights(views.initial_weights)
    Ytr, Yva = (np.asarray(Y[s], np.float64) for s in ("train", "valid"))
    mu, sd = Ytr.mean(0), Ytr.std(0)
    sd[sd == 0] = 1.0
    ztr, zva = ((Ytr - mu) / sd).astype(FLOAT), ((Yva - mu) / sd).astype(FLOAT)

    trainable.trainable = bool(train_blocks)
    inp = keras.Input(train_views.shape[2:])
    x = trainable(inp, training=False)  # batch-norm statistics stay those of ImageNet
    x = keras.layers.Dropout(dropout, seed=seed)(x)
    out = keras.layers.Dense(Ytr.shape[1], kernel_initializer=keras.initializers.GlorotUniform(seed=seed))(x)
    net = keras.Model(inp, out, name="finetuned_cnn")  # a Keras-safe name; `name` labels the result
    opt = keras.optimizers.Adam(learning_rate)
    tf, _ = import_tf()

    weights_t = net.trainable_variables
    opt.build(weights_t)
    spec = tf.TensorSpec((None, *train_views.shape[2:]), tf.as_dtype(FLOATX))

    @tf.function(input_signature=[spec, tf.TensorSpec((None, Ytr.shape[1]), tf.as_dtype(FLOATX))])
    def step(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(x, training=True) - y))
        opt.apply(tape.gradient(loss, weights_t), weights_t)
        return loss

    @tf.function(input_signature=[spec])
    def infer(x: Any) -> Any:
        return net(x, training=False)

    def predict(views: np.ndarray) -> np.ndarray:
        P = np.zeros((views.shape[1], Ytr.shape[1]))
        for v in range(views.shape[0]):
            P += np.vstack([np.asarray(infer(views[v, s:s + 256].astype(FLOAT)))
                            for s in range(0, views.shape[1], 256)])
        return P / views.shape[0]

    t1 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = ztr.shape[0]
    rows, best, best_w, wait = [], np.inf, None, 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="fine-tuning", unit="epoch")
    for epoch in range(1, int(epochs) + 1):
        order = rng.permutation(n)
        view = rng.integers(0, n_views, n)
        tot = 0.0
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            xb = train_views[view[idx], idx].astype(FLOAT)
            tot += float(step(xb, ztr[idx])) * idx.size
        val = float(np.mean((predict(eval_views["valid"]) - zva) ** 2))
        rows.append({"epoch": epoch, "loss": tot / n, "val_loss": val})
        wait += 1
        if np.isfinite(val) and val < best:
            best, best_w, wait = val, net.get_weights(), 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val_loss=f"{val:.4f}")
        if wait >= patience:
            break
    if bar is not None:
        bar.close()
    if best_w is not None:
        net.set_weights(best_w)
    t2 = time.perf_counter()
    preds = {s: predict(v) * sd + mu for s, v in eval_views.items()}
    t3 = time.perf_counter()
    history = pd.DataFrame(rows)
    n_trainable = int(sum(np.prod(w.shape) for w in net.trainable_weights))
    return ModelResult(name=name, predictions=preds, history=history, settings={
        "recipe": "ST-Net scaled: ImageNet MobileNetV2, last blocks fine-tuned, dropout + linear head, MSE on "
                  "standardised targets, Adam, early stopping on valid",
        **{k: v for k, v in cfg.items() if k not in ("seconds", "seed")}, "n_trainable_weights": n_trainable,
        "train_blocks": bool(train_blocks), "epochs": int(epochs), "patience": int(patience), "batch_size": int(batch_size),
        "learning_rate": float(learning_rate), "dropout": float(dropout), "seed": int(seed),
        "best_epoch": int(history.loc[history["val_loss"].idxmin(), "epoch"]) if len(history) else 0,
        "epochs_run": len(history), "best_val_loss": float(best),
        "seconds": {"views": cfg.get("seconds"), "training": round(t2 - t1, 1), "prediction": round(t3 - t2, 1)},
        "genes": None if genes is None else list(genes),
    })
