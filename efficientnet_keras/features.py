"""Multi-scale feature endpoints, so any EfficientNet or CoAtNet serves as a detection/segmentation backbone.

Endpoints are found from the layer graph (strided convs and ``block<N><x>_`` names), not from a table, so they
work for every variant, for custom networks from ``build_efficientnet``, and for keras.applications models.
"""

from __future__ import annotations


import keras

from efficientnet_keras.builder import BLOCK_PREFIX

__all__ = ["feature_layer_names", "feature_extractor"]


def _is_strided(layer) -> bool:
    strides = getattr(layer, "strides", None)
    return strides is not None and max(strides) > 1


def feature_layer_names(model: keras.Model) -> dict[int, str]:
    """``{stride: name of the last layer at that stride}`` for strides 2, 4, 8, 16, 32."""
    stem, blocks = None, {}
    for layer in model.layers:
        m = BLOCK_PREFIX.match(layer.name)
        if m:
            strided, _ = blocks.get(m.group(1), (False, None))
            blocks[m.group(1)] = (strided or _is_strided(layer), layer.name)
        elif layer.name.startswith("stem_"):  # the stem's last layer: stem_activation, CoAtNet's stem_conv2
            stem = layer.name
    if stem is None or not blocks:
        raise ValueError(f"Model '{model.name}' is not an EfficientNet (no 'stem_activation' / 'block1a_' layers).")
    stride, endpoints = 2, {2: stem}
    for strided, last in blocks.values():
        if strided:
            stride *= 2
        endpoints[stride] = last
    names = [layer.name for layer in model.layers]
    for top in ("top_activation", "top_norm"):  # EfficientNet's head conv, timm CoAtNets' final norm
        if top in names:
            endpoints[stride] = top
    return endpoints


def feature_extractor(model: keras.Model, strides=(2, 4, 8, 16, 32)) -> keras.Model:
    """A model returning ``{"P1": stride-2 map, ..., "P5": stride-32 map}`` (keras-hub's pyramid naming)."""
    names = feature_layer_names(model)
    missing = [s for s in strides if s not in names]
    if missing:
        raise ValueError(f"Model '{model.name}' has no feature map at stride(s) {missing}; it has {sorted(names)}.")
    outputs = {f"P{s.bit_length() - 1}": model.get_layer(names[s]).output for s in strides}
    return keras.Model(model.input, outputs, name=f"{model.name}_features")  # one input, as the model is called
