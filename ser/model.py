"""Model presets: the write-ups' network (`seed`) and our default over MFCC frame sequences.

A preset fixes the feature settings and the network together, so a stored model always says
which features it needs. Keras is imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ser.features import FeatureConfig
from ser.labels import NUM_CLASSES


@dataclass(frozen=True)
class Preset:
    name: str
    features: FeatureConfig
    description: str
    units: int = 64  # LSTM units per direction (the seed preset uses 123, one direction).
    layers: int = 2
    dense: int = 64
    dropout: float = 0.3
    # Training-only regularisers on the normalised MFCC frames (identity at inference): Gaussian
    # noise of this standard deviation, and dropout of whole coefficients over all frames
    # (SpatialDropout1D, a frequency mask in the spirit of SpecAugment).
    input_noise: float = 0.0
    channel_dropout: float = 0.0
    # Filters of a convolution along frequency before the LSTM (0: none). It needs log-mel frames
    # (features.cepstra False): each frame's spectrum is convolved (kernel `freq_kernel` bands) and
    # max-pooled over `freq_pool` bands, so a formant a band or two higher in another voice gives
    # the same value — speaker-independence the MFCC's DCT cannot offer.
    freq_conv: int = 0
    freq_kernel: int = 5
    freq_pool: int = 4
    learning_rate: float = 1e-3
    # Targets of 1 − s + s/7 and s/7 instead of one-hot: a model trained on one voice is kept from
    # driving its outputs to certainty on that voice's cues.
    label_smoothing: float = 0.0
    # Batch augmentations while training (`training.batch_augment`): mixup's Beta(α, α) (0: off),
    # and ``time_masks`` spans of up to ``mask_steps`` input steps zeroed per clip (0: off).
    mixup: float = 0.0
    time_masks: int = 0
    mask_steps: int = 10
    augment: tuple[str, ...] = ()  # Names from training.data.AUGMENTATIONS applied to training clips.
    # ... and added to the validation clips: checkpointing and early stopping then watch voices
    # unlike the training ones (one speaker's own clips validate at 0.99–1.0 from the first epoch).
    val_augment: tuple[str, ...] = ()
    monitor: str = "val_accuracy"  # What the best-validation checkpoint and early stopping watch.
    extra: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "seed": Preset(
        name="seed",
        features=FeatureConfig(kind="mean", cmvn=False, deltas=0, stack=1),
        description="The write-ups' net: LSTM 123 over the 40 mean MFCCs as a 40-step sequence of 1 value "
        "→ Dense 64 relu → Dropout 0.2 → Dense 32 relu → Dropout 0.2 → Dense 7 softmax.",
        units=123,
        layers=1,
        dropout=0.2,
    ),
    "bilstm": Preset(
        name="bilstm",
        features=FeatureConfig(),
        description="A bidirectional LSTM (64 per direction) over masked MFCC frames (pairs of 16 ms frames "
        "stacked, per-utterance normalised) → masked mean over time → Dense 64 relu → Dropout 0.3 → Dense 7.",
        layers=1,
        # Measured on the speaker-independent TESS protocol (README): 0.9/1.1 gave 57.8 %,
        # 0.8–1.25 64.6 %, 0.7–1.4 worse again (58.4 % one way).
        augment=("speed_0.8", "speed_0.9", "speed_1.1", "speed_1.25"),
        # Speaker-independent TESS, two seeds (README): 70.9 % and 69.8 % against 64.4 % and
        # 67.6 % without it.
        label_smoothing=0.1,
    ),
}
DEFAULT_PRESET = "bilstm"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]


def build_model(preset: Preset, num_classes: int = NUM_CLASSES):
    """A compiled Functional `keras.Model` with input ``features`` and output ``probabilities``."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=preset.features.input_shape, name="features")
    if preset.name == "seed":
        x = layers.LSTM(preset.units, name="lstm")(inputs)
        x = layers.Dense(64, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Dense(32, activation="relu")(x)
        x = layers.Dropout(0.2)(x)
    else:
        # Padded frames are exactly zero after normalisation; real frames never are.
        x = _frequency_conv(inputs, preset) if preset.freq_conv else inputs
        x = layers.Masking(mask_value=0.0, name="mask")(x)
        if preset.input_noise:
            x = layers.GaussianNoise(preset.input_noise, name="input_noise")(x)
        if preset.channel_dropout:
            x = layers.SpatialDropout1D(preset.channel_dropout, name="channel_dropout")(x)
        for i in range(preset.layers):
            lstm = layers.LSTM(preset.units, return_sequences=True, name=f"lstm_{i}")
            x = layers.Bidirectional(lstm, name=f"bilstm_{i}")(x)
        x = layers.GlobalAveragePooling1D(name="mean_over_time")(x)  # Honours the mask.
        x = layers.Dense(preset.dense, activation="relu")(x)
        x = layers.Dropout(preset.dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name=f"ser_{preset.name}")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=preset.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=preset.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _frequency_conv(inputs, preset: Preset):
    """(T, stack × n_mels) log-mel steps → (T, n_mels / freq_pool × freq_conv).

    No bias and ReLU before max-pooling: a padded (all-zero) frame stays exactly zero, so the
    Masking layer after it still finds the padding. Frames are unstacked for the convolution and
    pooled back in pairs along time, keeping the LSTM's sequence as long as the MFCC preset's.
    """
    from keras import layers

    f = preset.features
    if f.cepstra or f.pitch or f.deltas:
        raise ValueError("freq_conv needs plain log-mel frames: cepstra=False, no pitch, no deltas")
    if f.n_mels % preset.freq_pool:
        raise ValueError(f"freq_pool={preset.freq_pool} must divide n_mels={f.n_mels}")
    x = layers.Reshape((f.max_frames * f.stack, f.n_mels, 1), name="unstack")(inputs)
    x = layers.Conv2D(
        preset.freq_conv, (1, preset.freq_kernel), padding="same", use_bias=False, name="freq_conv"
    )(x)
    x = layers.ReLU(name="freq_relu")(x)
    x = layers.MaxPooling2D((f.stack, preset.freq_pool), name="freq_pool")(x)
    return layers.Reshape((f.max_frames, f.n_mels // preset.freq_pool * preset.freq_conv), name="restack")(x)


def average_models(models: list):
    """One Functional model whose output is the mean of ``models``' probabilities (an ensemble).

    Members share the input and keep their own weights; each becomes a nested model named
    ``member_<i>``. What `training.evaluate --ensemble` measures (the mean of the members' clip
    probabilities) is what this serves: a clip's probabilities are a length-weighted mean over its
    segments, which commutes with the mean over members.
    """
    import keras
    from keras import layers

    if len(models) < 2:
        raise ValueError(f"an ensemble needs at least 2 models, got {len(models)}")
    shape = models[0].input_shape[1:]
    if any(m.input_shape[1:] != shape for m in models):
        raise ValueError(f"members take different inputs: {[m.input_shape[1:] for m in models]}")
    inputs = keras.Input(shape=shape, name="features")
    outputs = []
    for i, m in enumerate(models):
        member = keras.Model(m.inputs[0], m.outputs[0], name=f"member_{i}")  # Same layers, unique name.
        outputs.append(member(inputs))
    mean = layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, mean, name=f"ensemble_{len(models)}")
